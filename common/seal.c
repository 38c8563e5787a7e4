#include "seal.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define SB_SEAL_VERSION   0x01
#define SB_SEAL_SIG_BYTES 64
#define SB_SEAL_MAX_DEPTH 32
#define SB_SEAL_CACHE     64

static const char sb_seal_leaf_tag[] = "sb-leaf-1";
static const char sb_seal_sig_tag[] = "sb-seal-1";

/*
 * Key rings
 */

typedef struct sb_keyring_key_s {
        unsigned char id[SB_SEAL_KEY_ID_BYTES];
        unsigned char pub[SB_SIGN_PUBLIC_BYTES];
} sb_keyring_key_t;

struct sb_keyring_s {
        sb_keyring_key_t *keys;
        size_t cnt;
};

sb_keyring_t *sb_keyring_new(void)
{
        return calloc(1, sizeof(sb_keyring_t));
}

void sb_keyring_destroy(sb_keyring_t *kr)
{
        if (!kr)
                return;
        free(kr->keys);
        free(kr);
}

static void sb_seal_key_id(const unsigned char pub[SB_SIGN_PUBLIC_BYTES],
                           unsigned char id[SB_SEAL_KEY_ID_BYTES])
{
        char hex[SB_KEY_ID_HEXLEN + 1];

        sb_key_id(pub, hex);
        sodium_hex2bin(id, SB_SEAL_KEY_ID_BYTES, hex, SB_KEY_ID_HEXLEN, NULL,
                       NULL, NULL);
}

static const sb_keyring_key_t *sb_keyring_find(const sb_keyring_t *kr,
                                               const unsigned char *id)
{
        size_t i;

        for (i = 0; i < kr->cnt; i++)
                if (!memcmp(kr->keys[i].id, id, SB_SEAL_KEY_ID_BYTES))
                        return &kr->keys[i];
        return NULL;
}

sb_err_t sb_keyring_add(sb_keyring_t *kr,
                        const unsigned char pub[SB_SIGN_PUBLIC_BYTES])
{
        unsigned char id[SB_SEAL_KEY_ID_BYTES];
        sb_keyring_key_t *keys;

        sb_seal_key_id(pub, id);
        if (sb_keyring_find(kr, id))
                return SB_OK;
        keys = realloc(kr->keys, (kr->cnt + 1) * sizeof(*keys));
        if (!keys)
                return SB_ERR_NOMEM;
        kr->keys = keys;
        memcpy(keys[kr->cnt].id, id, sizeof(id));
        memcpy(keys[kr->cnt].pub, pub, SB_SIGN_PUBLIC_BYTES);
        kr->cnt++;
        return SB_OK;
}

static int sb_seal_is_pub(const char *name)
{
        size_t n = strlen(name);

        return n > 4 && name[0] != '.' && !strcmp(name + n - 4, ".pub");
}

sb_err_t sb_keyring_load_dir(sb_keyring_t *kr, const char *dir, char *errstr,
                             size_t errstr_size)
{
        unsigned char pub[SB_SIGN_PUBLIC_BYTES];
        struct dirent **names = NULL;
        char path[4096];
        size_t found = 0;
        sb_err_t err = SB_OK;
        int i, n;

        n = scandir(dir, &names, NULL, alphasort);
        if (n < 0)
                return sb_seterr(errstr, errstr_size, SB_ERR_IO,
                                 "key directory '%s': %s", dir,
                                 strerror(errno));
        for (i = 0; i < n; i++) {
                if (!err && sb_seal_is_pub(names[i]->d_name)) {
                        snprintf(path, sizeof(path), "%s/%s", dir,
                                 names[i]->d_name);
                        err = sb_pubkey_load(path, pub, errstr, errstr_size);
                        if (!err && sb_keyring_add(kr, pub))
                                err = sb_seterr(errstr, errstr_size,
                                                SB_ERR_NOMEM, "out of memory");
                        found++;
                }
                free(names[i]);
        }
        free(names);
        if (!err && !found)
                err = sb_seterr(errstr, errstr_size, SB_ERR_CONFIG,
                                "key directory '%s' holds no public key "
                                "(*.pub)",
                                dir);
        return err;
}

size_t sb_keyring_cnt(const sb_keyring_t *kr)
{
        return kr ? kr->cnt : 0;
}

/*
 * Digests
 */

static void sb_seal_put_len(crypto_generichash_state *st, const void *p,
                            size_t len)
{
        unsigned char be[4];
        uint32_t n = p ? (uint32_t)len : 0xffffffffu;

        be[0] = (unsigned char)(n >> 24);
        be[1] = (unsigned char)(n >> 16);
        be[2] = (unsigned char)(n >> 8);
        be[3] = (unsigned char)n;
        crypto_generichash_update(st, be, 4);
        if (p && len)
                crypto_generichash_update(st, p, len);
}

static void sb_seal_leaf(const char *topic, const void *key, size_t keylen,
                         const void *value, size_t len,
                         const rd_kafka_headers_t *hdrs,
                         unsigned char out[SB_SEAL_NODE_BYTES])
{
        static const unsigned char zero = 0x00;
        crypto_generichash_state st;
        const char *name;
        const void *v;
        size_t i, vlen;

        crypto_generichash_init(&st, NULL, 0, SB_SEAL_NODE_BYTES);
        crypto_generichash_update(&st, &zero, 1);
        crypto_generichash_update(&st, (const unsigned char *)sb_seal_leaf_tag,
                                  sizeof(sb_seal_leaf_tag) - 1);
        sb_seal_put_len(&st, topic, strlen(topic));
        sb_seal_put_len(&st, key, keylen);
        sb_seal_put_len(&st, value, len);
        for (i = 0; hdrs && !rd_kafka_header_get_all(hdrs, i, &name, &v, &vlen);
             i++) {
                if (!strcmp(name, SB_SEAL_HEADER))
                        continue;
                sb_seal_put_len(&st, name, strlen(name));
                sb_seal_put_len(&st, v, vlen);
        }
        crypto_generichash_final(&st, out, SB_SEAL_NODE_BYTES);
}

static void sb_seal_node(const unsigned char *left, const unsigned char *right,
                         unsigned char out[SB_SEAL_NODE_BYTES])
{
        static const unsigned char one = 0x01;
        crypto_generichash_state st;

        crypto_generichash_init(&st, NULL, 0, SB_SEAL_NODE_BYTES);
        crypto_generichash_update(&st, &one, 1);
        crypto_generichash_update(&st, left, SB_SEAL_NODE_BYTES);
        crypto_generichash_update(&st, right, SB_SEAL_NODE_BYTES);
        crypto_generichash_final(&st, out, SB_SEAL_NODE_BYTES);
}

/* What the signature covers. */
static size_t sb_seal_signed(const unsigned char root[SB_SEAL_NODE_BYTES],
                             uint32_t n, unsigned char *out)
{
        size_t off = sizeof(sb_seal_sig_tag) - 1;

        memcpy(out, sb_seal_sig_tag, off);
        memcpy(out + off, root, SB_SEAL_NODE_BYTES);
        off += SB_SEAL_NODE_BYTES;
        out[off++] = (unsigned char)(n >> 24);
        out[off++] = (unsigned char)(n >> 16);
        out[off++] = (unsigned char)(n >> 8);
        out[off++] = (unsigned char)n;
        return off;
}

#define SB_SEAL_SIGNED_BYTES                                                   \
        (sizeof(sb_seal_sig_tag) - 1 + SB_SEAL_NODE_BYTES + 4)

static void sb_seal_put32(unsigned char *p, uint32_t v)
{
        p[0] = (unsigned char)(v >> 24);
        p[1] = (unsigned char)(v >> 16);
        p[2] = (unsigned char)(v >> 8);
        p[3] = (unsigned char)v;
}

static uint32_t sb_seal_get32(const unsigned char *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
               (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/*
 * Signer
 */

typedef struct sb_sealer_msg_s {
        char *topic;
        int32_t partition;
        void *key, *value;
        size_t keylen, len;
        int has_key, has_value;
        rd_kafka_headers_t *hdrs;
        void *opaque;
} sb_sealer_msg_t;

struct sb_sealer_s {
        const sb_signkey_t *key;
        unsigned char key_id[SB_SEAL_KEY_ID_BYTES];
        sb_sealer_msg_t msgs[SB_SEAL_BATCH_MAX];
        size_t cnt;
        /* the tree, level after level: at most 2n nodes */
        unsigned char nodes[2 * SB_SEAL_BATCH_MAX][SB_SEAL_NODE_BYTES];
};

sb_sealer_t *sb_sealer_new(const sb_signkey_t *key)
{
        sb_sealer_t *s = calloc(1, sizeof(*s));

        if (!s)
                return NULL;
        s->key = key;
        sodium_hex2bin(s->key_id, sizeof(s->key_id), sb_signkey_id(key),
                       SB_KEY_ID_HEXLEN, NULL, NULL, NULL);
        return s;
}

static void sb_sealer_msg_free(sb_sealer_msg_t *m)
{
        free(m->topic);
        free(m->key);
        free(m->value);
        if (m->hdrs)
                rd_kafka_headers_destroy(m->hdrs);
        memset(m, 0, sizeof(*m));
}

void sb_sealer_discard(sb_sealer_t *s)
{
        size_t i;

        for (i = 0; i < s->cnt; i++)
                sb_sealer_msg_free(&s->msgs[i]);
        s->cnt = 0;
}

void sb_sealer_destroy(sb_sealer_t *s)
{
        if (!s)
                return;
        sb_sealer_discard(s);
        free(s);
}

int sb_sealer_full(const sb_sealer_t *s)
{
        return s->cnt >= SB_SEAL_BATCH_MAX;
}

size_t sb_sealer_pending(const sb_sealer_t *s)
{
        return s->cnt;
}

static void *sb_seal_dup(const void *p, size_t len)
{
        void *d = malloc(len ? len : 1);

        if (d && len)
                memcpy(d, p, len);
        return d;
}

sb_err_t sb_sealer_add(sb_sealer_t *s, const char *topic, int32_t partition,
                       const void *key, size_t keylen, const void *value,
                       size_t len, rd_kafka_headers_t *hdrs, void *msg_opaque)
{
        sb_sealer_msg_t *m;

        if (s->cnt >= SB_SEAL_BATCH_MAX) {
                if (hdrs)
                        rd_kafka_headers_destroy(hdrs);
                return SB_ERR_INVALID_ARG;
        }
        m = &s->msgs[s->cnt];
        m->hdrs = hdrs;
        m->partition = partition;
        m->opaque = msg_opaque;
        m->has_key = key != NULL;
        m->has_value = value != NULL;
        m->keylen = keylen;
        m->len = len;
        if (!(m->topic = strdup(topic)) ||
            (key && !(m->key = sb_seal_dup(key, keylen))) ||
            (value && !(m->value = sb_seal_dup(value, len)))) {
                sb_sealer_msg_free(m);
                return SB_ERR_NOMEM;
        }
        s->cnt++;
        return SB_OK;
}

sb_err_t sb_sealer_flush(sb_sealer_t *s, sb_sealer_produce_fn_t *produce,
                         void *opaque)
{
        unsigned char signed_msg[SB_SEAL_SIGNED_BYTES];
        unsigned char sig[SB_SEAL_SIG_BYTES];
        unsigned char
            hdr[SB_SEAL_FIXED_BYTES + SB_SEAL_MAX_DEPTH * SB_SEAL_NODE_BYTES];
        char sig_hex[SB_SIG_HEXLEN + 1];
        size_t level_start[SB_SEAL_MAX_DEPTH + 1],
            level_width[SB_SEAL_MAX_DEPTH + 1];
        size_t n = s->cnt, i, depth = 0, w, off, next;
        sb_err_t err = SB_OK, e;

        if (n == 0)
                return SB_OK;
        /* Leaves, then each level above; nodes[] holds them in a row. */
        for (i = 0; i < n; i++) {
                sb_sealer_msg_t *m = &s->msgs[i];

                sb_seal_leaf(m->topic, m->has_key ? m->key : NULL, m->keylen,
                             m->has_value ? m->value : NULL, m->len, m->hdrs,
                             s->nodes[i]);
        }
        level_start[0] = 0;
        level_width[0] = n;
        next = n;
        for (w = n; w > 1; w = (w + 1) / 2) {
                size_t start = level_start[depth];

                for (i = 0; i + 1 < w; i += 2)
                        sb_seal_node(s->nodes[start + i],
                                     s->nodes[start + i + 1],
                                     s->nodes[next + i / 2]);
                if (w % 2)
                        memcpy(s->nodes[next + w / 2], s->nodes[start + w - 1],
                               SB_SEAL_NODE_BYTES);
                depth++;
                level_start[depth] = next;
                level_width[depth] = (w + 1) / 2;
                next += (w + 1) / 2;
        }
        /* the root is the last node */
        sb_seal_signed(s->nodes[next - 1], (uint32_t)n, signed_msg);
        if (sb_sign(s->key, signed_msg, sizeof(signed_msg), sig_hex) ||
            sodium_hex2bin(sig, sizeof(sig), sig_hex, SB_SIG_HEXLEN, NULL, NULL,
                           NULL))
                err = SB_ERR_CRYPTO;

        for (i = 0; i < n; i++) {
                sb_sealer_msg_t *m = &s->msgs[i];
                size_t idx = i, d;

                if (!err) {
                        hdr[0] = SB_SEAL_VERSION;
                        memcpy(hdr + 1, s->key_id, SB_SEAL_KEY_ID_BYTES);
                        sb_seal_put32(hdr + 1 + SB_SEAL_KEY_ID_BYTES,
                                      (uint32_t)n);
                        sb_seal_put32(hdr + 5 + SB_SEAL_KEY_ID_BYTES,
                                      (uint32_t)i);
                        memcpy(hdr + 9 + SB_SEAL_KEY_ID_BYTES, sig,
                               sizeof(sig));
                        off = SB_SEAL_FIXED_BYTES;
                        for (d = 0; d < depth; d++, idx /= 2) {
                                size_t sib = idx ^ 1;

                                if (sib >= level_width[d])
                                        continue; /* odd last: goes up */
                                memcpy(hdr + off,
                                       s->nodes[level_start[d] + sib],
                                       SB_SEAL_NODE_BYTES);
                                off += SB_SEAL_NODE_BYTES;
                        }
                        if (!m->hdrs)
                                m->hdrs = rd_kafka_headers_new(1);
                        rd_kafka_header_add(m->hdrs, SB_SEAL_HEADER, -1, hdr,
                                            (ssize_t)off);
                        e = produce(opaque, m->topic, m->partition,
                                    m->has_key ? m->key : NULL, m->keylen,
                                    m->has_value ? m->value : NULL, m->len,
                                    m->hdrs, m->opaque);
                        m->hdrs = NULL; /* produce owns them */
                        if (e && !err)
                                err = e;
                }
                sb_sealer_msg_free(m);
        }
        s->cnt = 0;
        return err;
}

/*
 * Verifier
 */

typedef struct sb_seal_root_s {
        unsigned char key_id[SB_SEAL_KEY_ID_BYTES];
        unsigned char root[SB_SEAL_NODE_BYTES];
        uint32_t n;
        int used;
} sb_seal_root_t;

struct sb_seal_verifier_s {
        const sb_keyring_t *kr;
        sb_seal_root_t cache[SB_SEAL_CACHE];
        size_t next; /* the slot to fill next; the last filled is next-1 */
        uint64_t checks;
};

sb_seal_verifier_t *sb_seal_verifier_new(const sb_keyring_t *kr)
{
        sb_seal_verifier_t *v = calloc(1, sizeof(*v));

        if (v)
                v->kr = kr;
        return v;
}

void sb_seal_verifier_destroy(sb_seal_verifier_t *v)
{
        free(v);
}

uint64_t sb_seal_verifier_checks(const sb_seal_verifier_t *v)
{
        return v->checks;
}

static int sb_seal_cached(const sb_seal_verifier_t *v, const unsigned char *id,
                          const unsigned char *root, uint32_t n)
{
        size_t k, slot;

        /* newest first: a batch's messages come together */
        for (k = 0; k < SB_SEAL_CACHE; k++) {
                slot = (v->next + SB_SEAL_CACHE - 1 - k) % SB_SEAL_CACHE;
                if (!v->cache[slot].used)
                        return 0;
                if (v->cache[slot].n == n &&
                    !memcmp(v->cache[slot].root, root, SB_SEAL_NODE_BYTES) &&
                    !memcmp(v->cache[slot].key_id, id, SB_SEAL_KEY_ID_BYTES))
                        return 1;
        }
        return 0;
}

sb_err_t sb_seal_verify(sb_seal_verifier_t *v, const char *topic,
                        const void *key, size_t keylen, const void *value,
                        size_t len, const rd_kafka_headers_t *hdrs,
                        char *reason, size_t reason_size)
{
        unsigned char node[SB_SEAL_NODE_BYTES], up[SB_SEAL_NODE_BYTES];
        unsigned char signed_msg[SB_SEAL_SIGNED_BYTES];
        const sb_keyring_key_t *k;
        const unsigned char *h, *path;
        char id_hex[SB_KEY_ID_HEXLEN + 1];
        uint32_t n, i, idx, w;
        size_t hlen, used = 0, path_len;
        const void *hv = NULL;
        sb_seal_root_t *slot;

        if (!hdrs ||
            rd_kafka_header_get_last(hdrs, SB_SEAL_HEADER, &hv, &hlen) || !hv)
                return sb_seterr(reason, reason_size, SB_ERR_CRYPTO,
                                 "unsigned: no %s header", SB_SEAL_HEADER);
        h = hv;
        if (hlen < SB_SEAL_FIXED_BYTES || h[0] != SB_SEAL_VERSION ||
            (hlen - SB_SEAL_FIXED_BYTES) % SB_SEAL_NODE_BYTES)
                return sb_seterr(reason, reason_size, SB_ERR_CRYPTO,
                                 "malformed %s header (%zu bytes, version %d)",
                                 SB_SEAL_HEADER, hlen, hlen ? h[0] : -1);
        n = sb_seal_get32(h + 1 + SB_SEAL_KEY_ID_BYTES);
        i = sb_seal_get32(h + 5 + SB_SEAL_KEY_ID_BYTES);
        if (n == 0 || n > SB_SEAL_BATCH_MAX || i >= n)
                return sb_seterr(reason, reason_size, SB_ERR_CRYPTO,
                                 "malformed %s header (message %" PRIu32
                                 " of %" PRIu32 ")",
                                 SB_SEAL_HEADER, i, n);
        sodium_bin2hex(id_hex, sizeof(id_hex), h + 1, SB_SEAL_KEY_ID_BYTES);
        if (!(k = sb_keyring_find(v->kr, h + 1)))
                return sb_seterr(reason, reason_size, SB_ERR_CRYPTO,
                                 "signed by unknown key id %s", id_hex);
        path = h + SB_SEAL_FIXED_BYTES;
        path_len = (hlen - SB_SEAL_FIXED_BYTES) / SB_SEAL_NODE_BYTES;

        sb_seal_leaf(topic, key, keylen, value, len, hdrs, node);
        for (idx = i, w = n; w > 1; idx /= 2, w = (w + 1) / 2) {
                if ((idx ^ 1) >= w)
                        continue; /* odd last: goes up unchanged */
                if (used >= path_len)
                        return sb_seterr(reason, reason_size, SB_ERR_CRYPTO,
                                         "malformed %s header (path too "
                                         "short)",
                                         SB_SEAL_HEADER);
                if (idx % 2)
                        sb_seal_node(path + used * SB_SEAL_NODE_BYTES, node,
                                     up);
                else
                        sb_seal_node(node, path + used * SB_SEAL_NODE_BYTES,
                                     up);
                memcpy(node, up, sizeof(node));
                used++;
        }
        if (used != path_len)
                return sb_seterr(reason, reason_size, SB_ERR_CRYPTO,
                                 "malformed %s header (path too long)",
                                 SB_SEAL_HEADER);
        if (sb_seal_cached(v, h + 1, node, n))
                return SB_OK;
        v->checks++;
        sb_seal_signed(node, n, signed_msg);
        if (crypto_sign_verify_detached(h + 9 + SB_SEAL_KEY_ID_BYTES,
                                        signed_msg, sizeof(signed_msg), k->pub))
                return sb_seterr(reason, reason_size, SB_ERR_CRYPTO,
                                 "signature by key id %s does not verify: the "
                                 "message or its batch was altered",
                                 id_hex);
        slot = &v->cache[v->next];
        memcpy(slot->key_id, h + 1, SB_SEAL_KEY_ID_BYTES);
        memcpy(slot->root, node, SB_SEAL_NODE_BYTES);
        slot->n = n;
        slot->used = 1;
        v->next = (v->next + 1) % SB_SEAL_CACHE;
        return SB_OK;
}

sb_err_t sb_seal_verify_message(sb_seal_verifier_t *v,
                                const rd_kafka_message_t *m, char *reason,
                                size_t reason_size)
{
        rd_kafka_headers_t *hdrs = NULL;

        if (rd_kafka_message_headers(m, &hdrs))
                hdrs = NULL;
        return sb_seal_verify(v, rd_kafka_topic_name(m->rkt), m->key,
                              m->key_len, m->payload, m->len, hdrs, reason,
                              reason_size);
}
