/*
 * The plain-language pages of `sharebus transparency` (CNIL R3.4-09,
 * R4.3-22: accessible, easily understood): one for a person, one for the
 * public registry, in French or English. Self-contained, so that they can
 * be mailed or served as they are: inline CSS, no script, no link, no
 * external resource. Every value from the log or the platform is escaped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "envelope.h"
#include "transparency.h"

typedef struct sb_tp_html_s {
        FILE *fp;
        int fr;
} sb_tp_html_t;

/* The text in the page's language. */
#define L(h, en_, fr_) ((h)->fr ? (fr_) : (en_))

static void sb_tp_esc(sb_tp_html_t *h, const char *s)
{
        for (; s && *s; s++) {
                switch (*s) {
                case '&':
                        fputs("&amp;", h->fp);
                        break;
                case '<':
                        fputs("&lt;", h->fp);
                        break;
                case '>':
                        fputs("&gt;", h->fp);
                        break;
                case '"':
                        fputs("&quot;", h->fp);
                        break;
                case '\'':
                        fputs("&#39;", h->fp);
                        break;
                default:
                        fputc(*s, h->fp);
                }
        }
}

/* An RFC 3339 time of the report as a date a person reads. */
static void sb_tp_date(sb_tp_html_t *h, const json_t *t)
{
        const char *s = json_string_value(t);
        char out[64];
        struct tm tm;
        time_t secs;
        int64_t ms;

        if (!s || sb_time_parse(s, &ms)) {
                fputs("-", h->fp);
                return;
        }
        secs = (time_t)(ms / 1000);
        gmtime_r(&secs, &tm);
        strftime(out, sizeof(out),
                 h->fr ? "%d/%m/%Y %H:%M (UTC)" : "%Y-%m-%d %H:%M UTC", &tm);
        fputs(out, h->fp);
}

/* The strings of array `a`, escaped, separated by ", ". */
static void sb_tp_list(sb_tp_html_t *h, const json_t *a)
{
        const json_t *v;
        size_t i;

        if (!json_array_size(a)) {
                fputs("-", h->fp);
                return;
        }
        json_array_foreach(a, i, v)
        {
                if (i)
                        fputs(", ", h->fp);
                sb_tp_esc(h, json_string_value(v));
        }
}

static void sb_tp_head(sb_tp_html_t *h, const char *title)
{
        fprintf(h->fp,
                "<!DOCTYPE html>\n<html lang=\"%s\">\n<head>\n"
                "<meta charset=\"utf-8\">\n"
                "<meta name=\"viewport\" content=\"width=device-width, "
                "initial-scale=1\">\n<title>",
                h->fr ? "fr" : "en");
        sb_tp_esc(h, title);
        fputs("</title>\n<style>\n"
              "body{font-family:system-ui,-apple-system,\"Segoe UI\",Arial,"
              "sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;"
              "line-height:1.5;color:#1b1b1b;background:#fff}\n"
              "h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;"
              "border-bottom:2px solid #000091}h3{font-size:1.1rem;"
              "margin:.2rem 0}\n"
              ".card{border:1px solid #ccc;border-radius:6px;padding:.8rem "
              "1rem;margin:1rem 0}\n"
              "dl{display:grid;grid-template-columns:max-content 1fr;"
              "gap:.2rem 1rem;margin:.5rem 0}dt{font-weight:600}dd{margin:0}\n"
              "table{border-collapse:collapse;margin:.5rem 0}"
              "th,td{border:1px solid #ccc;padding:.3rem .6rem;"
              "text-align:left}\n"
              ".muted{color:#555;font-size:.9rem}.ok{color:#18753c}"
              ".late{color:#b34000}\n"
              "code{font-size:.85rem;color:#555}\n"
              "</style>\n</head>\n<body>\n",
              h->fp);
}

/* Closes the page; its text, or NULL when out of memory. */
static char *sb_tp_finish(sb_tp_html_t *h, char **buf)
{
        fputs("</body>\n</html>\n", h->fp);
        if (fclose(h->fp)) {
                free(*buf);
                return NULL;
        }
        return *buf;
}

static int sb_tp_open(sb_tp_html_t *h, const char *lang, char **buf,
                      size_t *len)
{
        if (!lang || (strcmp(lang, "fr") && strcmp(lang, "en")))
                return -1;
        h->fr = !strcmp(lang, "fr");
        *buf = NULL;
        h->fp = open_memstream(buf, len);
        return h->fp ? 0 : -1;
}

/* A legal basis code (grants' "legal_basis") in plain words. */
static void sb_tp_legal_basis(sb_tp_html_t *h, const char *code)
{
        static const struct {
                const char *code, *en, *fr;
        } bases[] = {
            {"gdpr-6-1-a", "your consent", "votre consentement"},
            {"gdpr-6-1-b", "a contract with you", "un contrat avec vous"},
            {"gdpr-6-1-c", "a legal obligation", "une obligation légale"},
            {"gdpr-6-1-d", "protecting vital interests",
             "la sauvegarde d'intérêts vitaux"},
            {"gdpr-6-1-e", "a task in the public interest",
             "une mission d'intérêt public"},
            {"gdpr-6-1-f", "legitimate interests", "des intérêts légitimes"},
        };
        size_t i;

        for (i = 0; code && i < sizeof(bases) / sizeof(bases[0]); i++)
                if (!strcmp(code, bases[i].code)) {
                        fputs(L(h, bases[i].en, bases[i].fr), h->fp);
                        fputs(" <code>(", h->fp);
                        sb_tp_esc(h, code);
                        fputs(")</code>", h->fp);
                        return;
                }
        sb_tp_esc(h, code ? code : "-");
}

static void sb_tp_legal_bases(sb_tp_html_t *h, const json_t *a)
{
        const json_t *v;
        size_t i;

        if (!json_array_size(a))
                fputs("-", h->fp);
        json_array_foreach(a, i, v)
        {
                if (i)
                        fputs("; ", h->fp);
                sb_tp_legal_basis(h, json_string_value(v));
        }
}

/* Data categories: each field's doc, the field name after it. */
static void sb_tp_categories(sb_tp_html_t *h, const json_t *cats)
{
        const json_t *c;
        size_t i;

        fputs("<ul>\n", h->fp);
        json_array_foreach(cats, i, c)
        {
                const char *field =
                    json_string_value(json_object_get(c, "field"));
                const char *doc = json_string_value(json_object_get(c, "doc"));

                fputs("<li>", h->fp);
                /* The schema's doc of the pseudonym is for engineers. */
                if (field && !strcmp(field, "pseudonym"))
                        fputs(L(h,
                                "a code that replaces your identifier for "
                                "this reuser",
                                "un code qui remplace votre identifiant "
                                "pour ce réutilisateur"),
                              h->fp);
                else
                        sb_tp_esc(h, doc ? doc : field);
                fputs(" <code>(", h->fp);
                sb_tp_esc(h, field);
                fputs(")</code>", h->fp);
                if (json_is_true(json_object_get(c, "transformed")))
                        fputs(L(h, " — made less precise before sharing",
                                " — rendu moins précis avant le partage"),
                              h->fp);
                fputs("</li>\n", h->fp);
        }
        fputs("</ul>\n", h->fp);
}

static const char *sb_tp_reason(sb_tp_html_t *h, const char *reason)
{
        if (!reason)
                return "-";
        if (!strcmp(reason, "objection"))
                return L(h, "you objected to this use of your data",
                         "vous vous êtes opposé(e) à cette utilisation de vos "
                         "données");
        if (!strcmp(reason, "consent-withdrawn"))
                return L(h, "you withdrew your consent",
                         "vous avez retiré votre consentement");
        if (!strcmp(reason, "restriction"))
                return L(h, "you asked to restrict the use of your data",
                         "vous avez demandé la limitation de l'utilisation de "
                         "vos données");
        if (!strcmp(reason, "history"))
                return L(h,
                         "the data were older than this reuser is allowed to "
                         "receive",
                         "les données étaient plus anciennes que ce que ce "
                         "réutilisateur peut recevoir");
        if (!strcmp(reason, "withdrawn"))
                return L(h,
                         "the data were erased or withdrawn while they "
                         "waited to be sent to this reuser",
                         "les données ont été effacées ou retirées pendant "
                         "qu'elles attendaient d'être transmises à ce "
                         "réutilisateur");
        if (!strcmp(reason, "validity"))
                return L(h,
                         "this reuser's authorisation was not valid at the "
                         "time",
                         "l'autorisation de ce réutilisateur n'était pas "
                         "valide à ce moment");
        return NULL;
}

static const char *sb_tp_request_type(sb_tp_html_t *h, const char *type)
{
        static const struct {
                const char *type, *en, *fr;
        } types[] = {
            {"sharebus.rights.erasure", "Erasure of your data",
             "Effacement de vos données"},
            {"sharebus.rights.rectification", "Correction of your data",
             "Rectification de vos données"},
            {"sharebus.rights.objection", "Objection", "Opposition"},
            {"sharebus.rights.consent-withdrawn", "Consent withdrawn",
             "Retrait du consentement"},
            {"sharebus.rights.consent-given", "Consent given",
             "Consentement donné"},
            {"sharebus.rights.restriction", "Restriction of use",
             "Limitation de l'utilisation"},
            {"sharebus.rights.restriction-lifted", "Restriction lifted",
             "Fin de la limitation"},
        };
        size_t i;

        for (i = 0; type && i < sizeof(types) / sizeof(types[0]); i++)
                if (!strcmp(type, types[i].type))
                        return L(h, types[i].en, types[i].fr);
        return NULL;
}

static void sb_tp_recipient(sb_tp_html_t *h, const json_t *r)
{
        fputs("<section class=\"card\">\n<h3>", h->fp);
        sb_tp_esc(h, json_string_value(json_object_get(r, "reuser")));
        fputs("</h3>\n<dl>\n<dt>", h->fp);
        fputs(L(h, "What", "Quelles données"), h->fp);
        fputs("</dt><dd>", h->fp);
        sb_tp_categories(h, json_object_get(r, "categories"));
        fprintf(h->fp, "</dd>\n<dt>%s</dt><dd>", L(h, "From", "Provenant de"));
        sb_tp_esc(h, json_string_value(json_object_get(r, "dataset")));
        fprintf(h->fp, "</dd>\n<dt>%s</dt><dd>", L(h, "Why", "Pourquoi"));
        sb_tp_list(h, json_object_get(r, "purposes"));
        fprintf(h->fp, "</dd>\n<dt>%s</dt><dd>",
                L(h, "On what basis", "Sur quelle base"));
        sb_tp_legal_bases(h, json_object_get(r, "legal_bases"));
        fprintf(h->fp, "</dd>\n<dt>%s</dt><dd>", L(h, "When", "Quand"));
        fputs(L(h, "first on ", "la première fois le "), h->fp);
        sb_tp_date(h, json_object_get(r, "first_delivery"));
        fputs(L(h, ", last on ", ", la dernière fois le "), h->fp);
        sb_tp_date(h, json_object_get(r, "last_delivery"));
        fprintf(h->fp, "</dd>\n<dt>%s</dt><dd><code>",
                L(h, "Authorisation", "Autorisation"));
        sb_tp_list(h, json_object_get(r, "grants"));
        fputs("</code></dd>\n</dl>\n</section>\n", h->fp);
}

static void sb_tp_exclusion(sb_tp_html_t *h, const json_t *x)
{
        const char *reason = json_string_value(json_object_get(x, "reason"));
        const char *why = sb_tp_reason(h, reason);

        fputs("<li>", h->fp);
        fputs(L(h, "Not shared with ", "Non transmises à "), h->fp);
        fputs("<strong>", h->fp);
        sb_tp_esc(h, json_string_value(json_object_get(x, "reuser")));
        fputs("</strong> ", h->fp);
        fputs(L(h, "because ", "car "), h->fp);
        if (why)
                fputs(why, h->fp);
        else
                sb_tp_esc(h, reason);
        fputs(L(h, " (from ", " (depuis "), h->fp);
        sb_tp_esc(h, json_string_value(json_object_get(x, "dataset")));
        fputs(L(h, "; between ", " ; entre le "), h->fp);
        sb_tp_date(h, json_object_get(x, "first_at"));
        fputs(L(h, " and ", " et le "), h->fp);
        sb_tp_date(h, json_object_get(x, "last_at"));
        fputs(").</li>\n", h->fp);
}

static void sb_tp_request(sb_tp_html_t *h, const json_t *q)
{
        const char *type = json_string_value(json_object_get(q, "type"));
        const char *plain = sb_tp_request_type(h, type);
        const json_t *a;
        size_t i;

        fputs("<section class=\"card\">\n<h3>", h->fp);
        if (plain)
                fputs(plain, h->fp);
        else
                sb_tp_esc(h, type);
        fputs("</h3>\n<p>", h->fp);
        fputs(L(h, "You asked on ", "Demandée le "), h->fp);
        sb_tp_date(h, json_object_get(q, "requested_time"));
        fputs(L(h, "; forwarded on ", " ; transmise le "), h->fp);
        sb_tp_date(h, json_object_get(q, "notified_at"));
        fputs(". <span class=\"muted\">", h->fp);
        fputs(L(h, "Request ", "Demande "), h->fp);
        fputs("<code>", h->fp);
        sb_tp_esc(h, json_string_value(json_object_get(q, "event_id")));
        fputs("</code></span></p>\n", h->fp);
        if (!json_array_size(json_object_get(q, "reusers"))) {
                fputs("<p>", h->fp);
                fputs(L(h,
                        "No reuser had received your data: nobody needed to "
                        "be told.",
                        "Aucun réutilisateur n'avait reçu vos données : "
                        "personne n'avait à être prévenu."),
                      h->fp);
                fputs("</p>\n</section>\n", h->fp);
                return;
        }
        fprintf(h->fp, "<table>\n<tr><th>%s</th><th>%s</th></tr>\n",
                L(h, "Reuser", "Réutilisateur"), L(h, "Status", "État"));
        json_array_foreach(json_object_get(q, "reusers"), i, a)
        {
                const char *st = json_string_value(json_object_get(a, "state"));

                fputs("<tr><td>", h->fp);
                sb_tp_esc(h, json_string_value(json_object_get(a, "reuser")));
                fputs("</td><td>", h->fp);
                if (st && !strcmp(st, "acknowledged")) {
                        fputs("<span class=\"ok\">", h->fp);
                        fputs(
                            L(h, "Done: confirmed on ", "Fait : confirmé le "),
                            h->fp);
                        sb_tp_date(h, json_object_get(a, "acknowledged_at"));
                        fputs("</span>", h->fp);
                } else if (st && !strcmp(st, "pending")) {
                        fputs(L(h, "Told; confirmation expected by ",
                                "Prévenu ; confirmation attendue avant le "),
                              h->fp);
                        sb_tp_date(h, json_object_get(q, "due_at"));
                } else if (st && !strcmp(st, "overdue")) {
                        fputs("<span class=\"late\">", h->fp);
                        fputs(L(h,
                                "Told, but has not confirmed in time (it "
                                "was due on ",
                                "Prévenu, mais n'a pas confirmé à temps "
                                "(attendu le "),
                              h->fp);
                        sb_tp_date(h, json_object_get(q, "due_at"));
                        fputs(L(h, "); the platform follows it up",
                                ") ; la plateforme relance"),
                              h->fp);
                        fputs("</span>", h->fp);
                } else if (st && !strcmp(st, "invalid")) {
                        fputs("<span class=\"late\">", h->fp);
                        fputs(L(h,
                                "Told; its confirmation could not be "
                                "verified; the platform follows it up",
                                "Prévenu ; sa confirmation n'a pas pu être "
                                "vérifiée ; la plateforme relance"),
                              h->fp);
                        fputs("</span>", h->fp);
                } else {
                        fputs(L(h, "Told", "Prévenu"), h->fp);
                }
                fputs("</td></tr>\n", h->fp);
        }
        fputs("</table>\n</section>\n", h->fp);
}

char *sb_tp_subject_html(const json_t *report, const char *subject_id,
                         const char *lang)
{
        const json_t *recipients = json_object_get(report, "recipients");
        const json_t *exclusions = json_object_get(report, "exclusions");
        const json_t *requests = json_object_get(report, "requests");
        const json_t *unlisted = json_object_get(report, "unlisted");
        const json_t *period = json_object_get(report, "period");
        const json_t *v;
        sb_tp_html_t h;
        char *buf;
        size_t len, i;

        if (sb_tp_open(&h, lang, &buf, &len))
                return NULL;
        sb_tp_head(&h, L(&h, "Your data and who received it",
                         "Vos données et qui les a reçues"));
        fputs("<h1>", h.fp);
        fputs(L(&h, "Your data and who received it: ",
                "Vos données et qui les a reçues : "),
              h.fp);
        sb_tp_esc(&h, subject_id);
        fputs("</h1>\n<p class=\"muted\">", h.fp);
        fputs(L(&h,
                "This page is drawn from the platform's audit log, which "
                "records every sharing of personal data. Produced on ",
                "Cette page est tirée du journal de la plateforme, qui "
                "enregistre chaque partage de données personnelles. "
                "Produite le "),
              h.fp);
        sb_tp_date(&h, json_object_get(report, "generated_at"));
        if (json_is_string(json_object_get(period, "from")) ||
            json_is_string(json_object_get(period, "to"))) {
                fputs(L(&h, "; it covers ", " ; elle couvre "), h.fp);
                fputs(L(&h, "from ", "du "), h.fp);
                sb_tp_date(&h, json_object_get(period, "from"));
                fputs(L(&h, " to ", " au "), h.fp);
                sb_tp_date(&h, json_object_get(period, "to"));
        }
        fputs(".</p>\n", h.fp);

        fprintf(h.fp, "<h2>%s</h2>\n",
                L(&h, "Who received your data", "Qui a reçu vos données"));
        if (!json_array_size(recipients))
                fprintf(h.fp, "<p>%s</p>\n",
                        L(&h, "Nobody received data about you.",
                          "Personne n'a reçu de données vous concernant."));
        json_array_foreach(recipients, i, v) sb_tp_recipient(&h, v);
        json_array_foreach(unlisted, i, v)
        {
                fputs("<p class=\"muted\">", h.fp);
                fputs(L(&h, "Note: some deliveries to ",
                        "À noter : certains envois à "),
                      h.fp);
                sb_tp_esc(&h, json_string_value(json_object_get(v, "reuser")));
                fputs(L(&h,
                        " concerned too many people for the log to name "
                        "them all; you may have been among them. Ask the "
                        "platform to check.",
                        " concernaient trop de personnes pour que le "
                        "journal les cite toutes ; vous pouviez en faire "
                        "partie. Demandez à la plateforme de vérifier."),
                      h.fp);
                fputs("</p>\n", h.fp);
        }

        if (json_array_size(exclusions)) {
                fprintf(h.fp, "<h2>%s</h2>\n<ul>\n",
                        L(&h, "When your data was not shared",
                          "Quand vos données n'ont pas été partagées"));
                json_array_foreach(exclusions, i, v) sb_tp_exclusion(&h, v);
                fputs("</ul>\n", h.fp);
        }

        fprintf(h.fp, "<h2>%s</h2>\n", L(&h, "Your requests", "Vos demandes"));
        if (!json_array_size(requests))
                fprintf(h.fp, "<p>%s</p>\n",
                        L(&h, "No request from you was forwarded.",
                          "Aucune demande de votre part n'a été transmise."));
        json_array_foreach(requests, i, v) sb_tp_request(&h, v);
        if (json_array_size(requests) &&
            !json_is_true(json_object_get(report, "receipts_checked")))
                fprintf(h.fp, "<p class=\"muted\">%s</p>\n",
                        L(&h,
                          "The reusers' confirmations were not checked for "
                          "this page.",
                          "Les confirmations des réutilisateurs n'ont pas "
                          "été vérifiées pour cette page."));
        return sb_tp_finish(&h, &buf);
}

static void sb_tp_registry_reuser(sb_tp_html_t *h, const json_t *r)
{
        const json_t *g, *v;
        size_t i;

        fputs("<section class=\"card\">\n<h2>", h->fp);
        sb_tp_esc(h, json_string_value(json_object_get(r, "reuser")));
        fputs("</h2>\n", h->fp);
        if (!json_array_size(json_object_get(r, "grants")))
                fprintf(h->fp, "<p>%s</p>\n",
                        L(h, "No authorisation in force today.",
                          "Aucune autorisation en vigueur aujourd'hui."));
        json_array_foreach(json_object_get(r, "grants"), i, g)
        {
                fputs("<h3>", h->fp);
                fputs(L(h, "Authorisation ", "Autorisation "), h->fp);
                fputs("<code>", h->fp);
                sb_tp_esc(h, json_string_value(json_object_get(g, "grant")));
                fputs("</code></h3>\n<dl>\n", h->fp);
                fprintf(h->fp, "<dt>%s</dt><dd>",
                        L(h, "Data from", "Données issues de"));
                sb_tp_esc(h, json_string_value(json_object_get(g, "dataset")));
                fprintf(h->fp, "</dd>\n<dt>%s</dt><dd>",
                        L(h, "Why", "Pourquoi"));
                sb_tp_list(h, json_object_get(g, "purposes"));
                fprintf(h->fp, "</dd>\n<dt>%s</dt><dd>",
                        L(h, "On what basis", "Sur quelle base"));
                sb_tp_legal_basis(
                    h, json_string_value(json_object_get(g, "legal_basis")));
                fprintf(h->fp, "</dd>\n<dt>%s</dt><dd>",
                        L(h, "Valid", "Validité"));
                fputs(L(h, "from ", "du "), h->fp);
                sb_tp_date(h, json_object_get(g, "valid_from"));
                fputs(L(h, " to ", " au "), h->fp);
                sb_tp_date(h, json_object_get(g, "valid_until"));
                if (json_is_string(json_object_get(g, "contact"))) {
                        fprintf(h->fp, "</dd>\n<dt>%s</dt><dd>",
                                L(h, "Contact", "Contact"));
                        sb_tp_esc(h, json_string_value(
                                         json_object_get(g, "contact")));
                }
                fprintf(h->fp, "</dd>\n<dt>%s</dt><dd>",
                        L(h, "What", "Quelles données"));
                sb_tp_categories(h, json_object_get(g, "categories"));
                fputs("</dd>\n</dl>\n", h->fp);
        }
        if (json_array_size(json_object_get(r, "volumes"))) {
                fprintf(h->fp,
                        "<table>\n<tr><th>%s</th><th>%s</th><th>%s</th>"
                        "<th>%s</th></tr>\n",
                        L(h, "Month", "Mois"), L(h, "Data from", "Données"),
                        L(h, "Records", "Enregistrements"),
                        L(h, "People", "Personnes"));
                json_array_foreach(json_object_get(r, "volumes"), i, v)
                {
                        fputs("<tr><td>", h->fp);
                        sb_tp_esc(
                            h, json_string_value(json_object_get(v, "month")));
                        fputs("</td><td>", h->fp);
                        sb_tp_esc(h, json_string_value(
                                         json_object_get(v, "dataset")));
                        fprintf(
                            h->fp,
                            "</td><td>%" JSON_INTEGER_FORMAT
                            "</td><td>%s%" JSON_INTEGER_FORMAT "</td></tr>\n",
                            json_integer_value(json_object_get(v, "records")),
                            json_is_true(
                                json_object_get(v, "subjects_at_least"))
                                ? L(h, "at least ", "au moins ")
                                : "",
                            json_integer_value(json_object_get(v, "subjects")));
                }
                fputs("</table>\n", h->fp);
        }
        fputs("</section>\n", h->fp);
}

char *sb_tp_registry_html(const json_t *registry, const char *lang)
{
        const json_t *reusers = json_object_get(registry, "reusers"), *r;
        sb_tp_html_t h;
        char *buf;
        size_t len, i;

        if (sb_tp_open(&h, lang, &buf, &len))
                return NULL;
        sb_tp_head(&h, L(&h, "Who reuses the data shared here",
                         "Qui réutilise les données partagées ici"));
        fprintf(h.fp, "<h1>%s</h1>\n<p>%s</p>\n<p class=\"muted\">",
                L(&h, "Who reuses the data shared here",
                  "Qui réutilise les données partagées ici"),
                L(&h,
                  "Each organisation below receives personal data through "
                  "this platform, only the data listed, only for the "
                  "purposes listed, and only while its authorisation is "
                  "valid. Volumes come from the platform's audit log.",
                  "Chaque organisme ci-dessous reçoit des données "
                  "personnelles par cette plateforme, seulement les données "
                  "indiquées, seulement pour les finalités indiquées, et "
                  "seulement tant que son autorisation est valide. Les "
                  "volumes viennent du journal de la plateforme."));
        fputs(L(&h, "Produced on ", "Produit le "), h.fp);
        sb_tp_date(&h, json_object_get(registry, "generated_at"));
        fputs(".</p>\n", h.fp);
        if (!json_array_size(reusers))
                fprintf(h.fp, "<p>%s</p>\n",
                        L(&h, "No reuser today.",
                          "Aucun réutilisateur aujourd'hui."));
        json_array_foreach(reusers, i, r) sb_tp_registry_reuser(&h, r);
        return sb_tp_finish(&h, &buf);
}
