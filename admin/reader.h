/*
 * sharebus - reading a topic from its beginning to its end, as the platform
 * administrator: `sharebus rights` reads _sb.audit, the receipt topics and
 * _sb.alerts, `sharebus audit` reads _sb.audit.
 *
 * Committed messages only (read_committed), below the high watermarks
 * taken before reading, each read bounded by the admin timeout_ms. The
 * consumer is assigned partitions by hand: it never joins its group and
 * commits nothing.
 */
#ifndef SB_READER_H
#define SB_READER_H

#include <librdkafka/rdkafka.h>

#include "err.h"
#include "platform.h"

typedef struct sb_reader_s sb_reader_t;

/*
 * A reader connecting with `cfg` (borrowed: it must outlive the reader),
 * in group "<client_id>-<what>"; `what` also names it in errors ("rights",
 * "audit"). NULL and errstr on error.
 */
sb_reader_t *sb_reader_new(const sb_admin_cfg_t *cfg, const char *what,
                           char *errstr, size_t errstr_size);
void sb_reader_destroy(sb_reader_t *rd);

/* Called for each message read; an error stops the read and is returned. */
typedef sb_err_t (*sb_reader_cb_t)(const rd_kafka_message_t *m, void *opaque,
                                   char *errstr, size_t errstr_size);

/*
 * Calls `cb` for every committed message of `topic` below the high
 * watermarks read before starting, in order within each partition.
 * SB_ERR_NOT_FOUND when the topic does not exist.
 */
sb_err_t sb_reader_read(sb_reader_t *rd, const char *topic, sb_reader_cb_t cb,
                        void *opaque, char *errstr, size_t errstr_size);

#endif
