/* sharebus keys generate --out NAME | keys id FILE.pub */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "crypto.h"
#include "sign.h"

static int sb_keys_usage(const char *why)
{
        FILE *fp = why ? stderr : stdout;

        if (why)
                fprintf(fp, "sharebus keys: %s\n\n", why);
        fprintf(fp,
                "usage: sharebus keys generate --out NAME\n"
                "       sharebus keys id PUBLIC_KEY_FILE\n"
                "\n"
                "generate  makes an Ed25519 signing key pair: NAME.key, the "
                "secret key\n"
                "          (mode 0600; name it in a reuser's "
                "signing_key_file), and\n"
                "          NAME.pub, the public key to give the platform "
                "team. Existing\n"
                "          files are never overwritten. Prints the key id.\n"
                "id        prints the key id of a public key file: the first "
                "8 bytes of\n"
                "          BLAKE2b-256 of the public key, in hex (header "
                "sb_key_id).\n");
        return why ? SB_EXIT_USAGE : SB_EXIT_OK;
}

static int sb_keys_generate(int argc, char **argv)
{
        static const struct option opts[] = {
            {"out", required_argument, NULL, 'o'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        char errstr[1024], secret[4096], public[4096];
        const char *out = NULL;
        sb_signkey_t *key;
        int opt;

        optind = 1;
        while ((opt = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
                switch (opt) {
                case 'o':
                        out = optarg;
                        break;
                case 'h':
                        return sb_keys_usage(NULL);
                default:
                        return sb_keys_usage("unknown option");
                }
        }
        if (optind < argc)
                return sb_keys_usage("unexpected argument");
        if (!out || !*out)
                return sb_keys_usage("--out NAME is required");
        if ((size_t)snprintf(secret, sizeof(secret), "%s.key", out) >=
                sizeof(secret) ||
            (size_t)snprintf(public, sizeof(public), "%s.pub", out) >=
                sizeof(public))
                return sb_keys_usage("--out: name too long");
        if (sb_crypto_init(errstr, sizeof(errstr))) {
                fprintf(stderr, "sharebus keys: %s\n", errstr);
                return SB_EXIT_ERROR;
        }
        key = sb_signkey_generate();
        if (!key) {
                fprintf(stderr, "sharebus keys: out of memory\n");
                return SB_EXIT_ERROR;
        }
        if (sb_signkey_save(key, secret, public, errstr, sizeof(errstr))) {
                fprintf(stderr, "sharebus keys: %s\n", errstr);
                sb_signkey_destroy(key);
                return SB_EXIT_ERROR;
        }
        fprintf(stderr, "sharebus keys: wrote %s (secret, mode 0600) and %s\n",
                secret, public);
        printf("%s\n", sb_signkey_id(key));
        sb_signkey_destroy(key);
        return SB_EXIT_OK;
}

static int sb_keys_id(int argc, char **argv)
{
        unsigned char pub[SB_SIGN_PUBLIC_BYTES];
        char errstr[1024], id[SB_KEY_ID_HEXLEN + 1];

        if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
                return sb_keys_usage(NULL);
        if (argc != 2)
                return sb_keys_usage("keys id takes one public key file");
        if (sb_crypto_init(errstr, sizeof(errstr)) ||
            sb_pubkey_load(argv[1], pub, errstr, sizeof(errstr))) {
                fprintf(stderr, "sharebus keys: %s\n", errstr);
                return SB_EXIT_ERROR;
        }
        sb_key_id(pub, id);
        printf("%s\n", id);
        return SB_EXIT_OK;
}

int sb_cmd_keys(int argc, char **argv)
{
        if (argc < 2)
                return sb_keys_usage("missing action (generate, id)");
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
                return sb_keys_usage(NULL);
        if (!strcmp(argv[1], "generate"))
                return sb_keys_generate(argc - 1, argv + 1);
        if (!strcmp(argv[1], "id"))
                return sb_keys_id(argc - 1, argv + 1);
        return sb_keys_usage("action must be generate or id");
}
