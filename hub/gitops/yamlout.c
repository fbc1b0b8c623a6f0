/* yamlout.c - YAML output through libyaml's emitter: cJSON values as YAML
 * documents with safe scalar quoting, and re-emission of user YAML bundles. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>
#include "error.h"
#include "yamlout.h"

#define YAMLOUT_MAX_DEPTH 64

struct sink {
    struct re_buf *out;
    int rc;
};

static int sink_write(void *data, unsigned char *buffer, size_t size)
{
    struct sink *s = data;
    int rc = re_buf_append(s->out, buffer, size);
    if (rc < 0) {
        s->rc = rc;
        return 0;
    }
    return 1;
}

__attribute__((format(printf, 2, 3)))
static void seterr(struct re_buf *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        re_buf_reset(err);
        re_buf_vprintf(err, fmt, ap);
        va_end(ap);
    }
}

/* YAML 1.1 and 1.2 words that resolve to booleans, null or special floats. */
static const struct {
    const char *w;
    size_t len;
} reserved_words[] = {
#define W(s) { s, sizeof(s) - 1 }
    W("true"), W("false"), W("yes"), W("no"), W("on"), W("off"), W("y"), W("n"),
    W("null"), W("~"), W(".inf"), W("+.inf"), W("-.inf"), W(".nan"), W("<<"), W("="),
#undef W
};

bool yamlout_needs_quotes(const char *s, size_t len)
{
    if (len == 0)
        return true;
    if (len <= 5)
        for (size_t i = 0; i < sizeof(reserved_words) / sizeof(reserved_words[0]); i++)
            if (reserved_words[i].len == len && strncasecmp(s, reserved_words[i].w, len) == 0)
                return true;
    unsigned char c0 = (unsigned char)s[0];
    /* Anything number-like (ints, floats, octal, hex, sexagesimal, dates). */
    if (c0 >= '0' && c0 <= '9')
        return true;
    if ((c0 == '+' || c0 == '-' || c0 == '.') && len > 1 &&
        ((s[1] >= '0' && s[1] <= '9') || s[1] == '.'))
        return true;
    if (strchr("{}[]-&*!|>%@`'\",?:#", c0))
        return true;
    if (c0 == ' ' || c0 == '\t' || s[len - 1] == ' ' || s[len - 1] == '\t')
        return true;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n' || c == '\r' || c == '\'' || c == '"' || c == '\t' || c < 0x20)
            return true;
        if (c == ':' && (i + 1 == len || s[i + 1] == ' '))
            return true;
        if (c == '#' && i > 0 && s[i - 1] == ' ')
            return true;
    }
    return false;
}

static int emit(yaml_emitter_t *em, yaml_event_t *ev, struct sink *sk,
                struct re_buf *err)
{
    if (yaml_emitter_emit(em, ev))
        return 0;
    if (sk->rc < 0)
        return sk->rc;
    seterr(err, "yaml emitter: %s", em->problem);
    return em->error == YAML_MEMORY_ERROR ? -RE_ENOMEM : -RE_EINVAL;
}

static int emit_string(yaml_emitter_t *em, struct sink *sk, const char *s,
                       struct re_buf *err)
{
    yaml_event_t ev;
    size_t len = strlen(s);
    bool quote = yamlout_needs_quotes(s, len);
    yaml_scalar_style_t style = YAML_ANY_SCALAR_STYLE;
    if (memchr(s, '\n', len))
        style = YAML_LITERAL_SCALAR_STYLE;   /* libyaml falls back to "..." */
    else if (quote)
        style = YAML_SINGLE_QUOTED_SCALAR_STYLE; /* or "..." when needed */
    if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)len,
                                      !quote, 1, style)) {
        seterr(err, "value is not valid UTF-8: '%.40s'", s);
        return -RE_EINVAL;
    }
    return emit(em, &ev, sk, err);
}

static int emit_plain(yaml_emitter_t *em, struct sink *sk, const char *s,
                      struct re_buf *err)
{
    yaml_event_t ev;
    if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s,
                                      (int)strlen(s), 1, 1, YAML_PLAIN_SCALAR_STYLE))
        return -RE_ENOMEM;
    return emit(em, &ev, sk, err);
}

static int emit_node(yaml_emitter_t *em, struct sink *sk, const cJSON *j,
                     int depth, struct re_buf *err)
{
    yaml_event_t ev;
    int rc = 0;
    char num[64];

    if (depth > YAMLOUT_MAX_DEPTH) {
        seterr(err, "value nested too deeply");
        return -RE_EDEPTH;
    }
    if (cJSON_IsObject(j)) {
        yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
        if ((rc = emit(em, &ev, sk, err)) < 0)
            return rc;
        for (const cJSON *c = j->child; c; c = c->next) {
            if (!c->string) {
                seterr(err, "object member without a name");
                return -RE_EINVAL;
            }
            if ((rc = emit_string(em, sk, c->string, err)) < 0 ||
                (rc = emit_node(em, sk, c, depth + 1, err)) < 0)
                return rc;
        }
        yaml_mapping_end_event_initialize(&ev);
        return emit(em, &ev, sk, err);
    }
    if (cJSON_IsArray(j)) {
        /* Empty sequences need the flow style "[]". */
        yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
            j->child ? YAML_BLOCK_SEQUENCE_STYLE : YAML_FLOW_SEQUENCE_STYLE);
        if ((rc = emit(em, &ev, sk, err)) < 0)
            return rc;
        for (const cJSON *c = j->child; c; c = c->next)
            if ((rc = emit_node(em, sk, c, depth + 1, err)) < 0)
                return rc;
        yaml_sequence_end_event_initialize(&ev);
        return emit(em, &ev, sk, err);
    }
    if (cJSON_IsString(j))
        return emit_string(em, sk, j->valuestring ? j->valuestring : "", err);
    if (cJSON_IsBool(j))
        return emit_plain(em, sk, cJSON_IsTrue(j) ? "true" : "false", err);
    if (cJSON_IsNull(j))
        return emit_plain(em, sk, "null", err);
    if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        if (!isfinite(d)) {
            seterr(err, "number is not finite");
            return -RE_EINVAL;
        }
        if (d == floor(d) && fabs(d) < 9007199254740992.0)
            rc = re_snprintf(num, sizeof(num), "%lld", (long long)d);
        else
            rc = re_snprintf(num, sizeof(num), "%.17g", d);
        if (rc < 0)
            return rc;
        return emit_plain(em, sk, num, err);
    }
    seterr(err, "value of an unsupported type");
    return -RE_EINVAL;
}

static void emitter_setup(yaml_emitter_t *em, struct sink *sk)
{
    yaml_emitter_set_output(em, sink_write, sk);
    yaml_emitter_set_unicode(em, 1);
    yaml_emitter_set_width(em, -1);
    yaml_emitter_set_indent(em, 2);
    yaml_emitter_set_break(em, YAML_LN_BREAK);
}

int yamlout_docs(struct re_buf *out, const cJSON *const *docs, size_t n,
                 struct re_buf *err)
{
    yaml_emitter_t em;
    yaml_event_t ev;
    struct sink sk = { out, 0 };
    size_t mark = out->len;
    int rc = 0;

    if (!yaml_emitter_initialize(&em))
        return -RE_ENOMEM;
    emitter_setup(&em, &sk);
    yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
    if ((rc = emit(&em, &ev, &sk, err)) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, i == 0);
        if ((rc = emit(&em, &ev, &sk, err)) < 0)
            goto out;
        if ((rc = emit_node(&em, &sk, docs[i], 0, err)) < 0)
            goto out;
        yaml_document_end_event_initialize(&ev, 1);
        if ((rc = emit(&em, &ev, &sk, err)) < 0)
            goto out;
    }
    yaml_stream_end_event_initialize(&ev);
    if ((rc = emit(&em, &ev, &sk, err)) < 0)
        goto out;
    if (!yaml_emitter_flush(&em))
        rc = sk.rc < 0 ? sk.rc : -RE_EIO;
out:
    yaml_emitter_delete(&em);
    if (rc < 0 && out->len > mark) {
        out->len = mark;
        if (out->ptr)
            out->ptr[mark] = '\0';
    }
    return rc;
}

int yamlout_doc(struct re_buf *out, const cJSON *doc, struct re_buf *err)
{
    return yamlout_docs(out, &doc, 1, err);
}

static void parse_error(struct re_buf *err, const yaml_parser_t *p)
{
    if (!err)
        return;
    re_buf_reset(err);
    re_buf_printf(err, "line %zu column %zu: %s%s%s",
                  p->problem_mark.line + 1, p->problem_mark.column + 1,
                  p->problem ? p->problem : "invalid YAML",
                  p->context ? " " : "", p->context ? p->context : "");
}

/* First pass: syntax and nesting depth, before the (recursive) dumper runs. */
static int check_events(const char *text, size_t len, struct re_buf *err)
{
    yaml_parser_t p;
    yaml_event_t ev;
    int depth = 0, rc = 0;
    bool done = false;

    if (!yaml_parser_initialize(&p))
        return -RE_ENOMEM;
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    while (!done) {
        if (!yaml_parser_parse(&p, &ev)) {
            parse_error(err, &p);
            rc = -RE_EPARSE;
            break;
        }
        switch (ev.type) {
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT:
            if (++depth > YAMLOUT_MAX_DEPTH) {
                seterr(err, "YAML nested too deeply");
                rc = -RE_EDEPTH;
                done = true;
            }
            break;
        case YAML_MAPPING_END_EVENT:
        case YAML_SEQUENCE_END_EVENT:
            depth--;
            break;
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    return rc;
}

static const yaml_node_t *map_get(yaml_document_t *doc, const yaml_node_t *map,
                                  const char *key)
{
    for (yaml_node_pair_t *pr = map->data.mapping.pairs.start;
         pr < map->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = yaml_document_get_node(doc, pr->key);
        if (k && k->type == YAML_SCALAR_NODE &&
            k->data.scalar.length == strlen(key) &&
            memcmp(k->data.scalar.value, key, k->data.scalar.length) == 0)
            return yaml_document_get_node(doc, pr->value);
    }
    return NULL;
}

static bool is_empty_doc(const yaml_node_t *root)
{
    return !root || (root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0);
}

static int check_manifest(yaml_document_t *doc, const yaml_node_t *root, size_t idx,
                          struct re_buf *err)
{
    static const char *const need[] = { "apiVersion", "kind", NULL };
    if (root->type != YAML_MAPPING_NODE)
        goto bad;
    for (const char *const *k = need; *k; k++) {
        const yaml_node_t *v = map_get(doc, root, *k);
        if (!v || v->type != YAML_SCALAR_NODE || v->data.scalar.length == 0)
            goto bad;
    }
    const yaml_node_t *md = map_get(doc, root, "metadata");
    if (!md || md->type != YAML_MAPPING_NODE)
        goto bad;
    return 0;
bad:
    if (err) {
        re_buf_reset(err);
        re_buf_printf(err, "document %zu is not a Kubernetes manifest "
                      "(a mapping with apiVersion, kind and metadata)", idx + 1);
    }
    return -RE_EINVAL;
}

int yamlout_reemit_manifests(struct re_buf *out, const char *text, size_t len,
                             size_t *n_docs, struct re_buf *err)
{
    yaml_parser_t p;
    yaml_emitter_t em;
    yaml_document_t doc;
    struct sink sk = { out, 0 };
    size_t mark = out->len, idx = 0, written = 0;
    bool have_doc = false;
    int rc;

    if ((rc = check_events(text, len, err)) < 0)
        return rc;
    if (!yaml_parser_initialize(&p))
        return -RE_ENOMEM;
    if (!yaml_emitter_initialize(&em)) {
        yaml_parser_delete(&p);
        return -RE_ENOMEM;
    }
    emitter_setup(&em, &sk);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    for (;; idx++) {
        if (!yaml_parser_load(&p, &doc)) {
            parse_error(err, &p);
            rc = -RE_EPARSE;
            goto out;
        }
        have_doc = true;
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (!root)
            break;             /* end of stream */
        if (is_empty_doc(root)) {
            yaml_document_delete(&doc);
            have_doc = false;
            continue;
        }
        if ((rc = check_manifest(&doc, root, idx, err)) < 0)
            goto out;
        /* yaml_emitter_dump deletes the document, success or not. */
        have_doc = false;
        if (!yaml_emitter_dump(&em, &doc)) {
            rc = sk.rc < 0 ? sk.rc : -RE_EINVAL;
            if (rc == -RE_EINVAL)
                seterr(err, "yaml emitter: %s", em.problem);
            goto out;
        }
        written++;
    }
    if (written == 0) {
        seterr(err, "no manifest in the YAML bundle");
        rc = -RE_EINVAL;
        goto out;
    }
    if (!yaml_emitter_close(&em) || !yaml_emitter_flush(&em)) {
        rc = sk.rc < 0 ? sk.rc : -RE_EIO;
        goto out;
    }
    if (n_docs)
        *n_docs = written;
    rc = 0;
out:
    if (have_doc)
        yaml_document_delete(&doc);
    yaml_emitter_delete(&em);
    yaml_parser_delete(&p);
    if (rc < 0 && out->len > mark) {
        out->len = mark;
        if (out->ptr)
            out->ptr[mark] = '\0';
    }
    return rc;
}
