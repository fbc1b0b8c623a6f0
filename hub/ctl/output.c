/* output.c - resedgectl output: tables a person reads, JSON for scripts,
 * YAML through libyaml. Table cells never pass terminal control characters. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <yaml.h>
#include "ctl.h"
#include "error.h"

#define CELL_MAX_CHARS 60        /* longer cells are cut with "..." in tables */
#define AUTO_MAX_COLS 8
#define CELL_BUF_MAX (64 * 1024)

int ctl_format_parse(enum ctl_format *out, const char *s)
{
    if (strcmp(s, "table") == 0)
        *out = CTL_FMT_TABLE;
    else if (strcmp(s, "json") == 0)
        *out = CTL_FMT_JSON;
    else if (strcmp(s, "yaml") == 0)
        *out = CTL_FMT_YAML;
    else
        return -RE_EINVAL;
    return 0;
}

/* A scalar (or a key, as a string) the way cJSON escapes it. */
static int json_scalar(FILE *f, const cJSON *v)
{
    char *s = cJSON_PrintUnformatted(v);
    if (!s)
        return -RE_ENOMEM;
    fputs(s, f);
    free(s);
    return 0;
}

static int json_key(FILE *f, const char *k)
{
    cJSON *tmp = cJSON_CreateString(k ? k : "");
    int r = tmp ? json_scalar(f, tmp) : -RE_ENOMEM;
    cJSON_Delete(tmp);
    return r;
}

static int json_value(FILE *f, const cJSON *v, int indent)
{
    bool obj = cJSON_IsObject(v);
    int r = 0;

    if (indent > 128)
        return -RE_EDEPTH;
    if (!obj && !cJSON_IsArray(v))
        return json_scalar(f, v);
    if (!v->child) {
        fputs(obj ? "{}" : "[]", f);
        return 0;
    }
    fputs(obj ? "{\n" : "[\n", f);
    for (const cJSON *c = v->child; c && r == 0; c = c->next) {
        fprintf(f, "%*s", indent + 2, "");
        if (obj) {
            if ((r = json_key(f, c->string)) < 0)
                break;
            fputs(": ", f);
        }
        r = json_value(f, c, indent + 2);
        fputs(c->next ? ",\n" : "\n", f);
    }
    fprintf(f, "%*s%c", indent, "", obj ? '}' : ']');
    return r;
}

int ctl_print_json(FILE *f, const cJSON *v)
{
    int r = json_value(f, v, 0);
    fputc('\n', f);
    return r;
}

/* ---- YAML ---- */

static int yaml_out(void *data, unsigned char *buf, size_t size)
{
    return fwrite(buf, 1, size, (FILE *)data) == size;
}

/* Would this string, emitted plain, read back as something other than a string? */
static bool yaml_ambiguous(const char *s)
{
    static const char *const words[] = {
        "", "~", "null", "true", "false", "yes", "no", "on", "off", "y", "n",
        ".inf", "-.inf", "+.inf", ".nan", NULL,
    };
    for (int i = 0; words[i]; i++)
        if (strcasecmp(s, words[i]) == 0)
            return true;
    const char *p = s;
    if (*p == '+' || *p == '-' || *p == '.')
        p++;
    if (*p == '.')
        p++;
    return isdigit((unsigned char)*p) != 0;
}

static int yaml_scalar(yaml_emitter_t *em, const char *s, bool is_string)
{
    yaml_event_t ev;
    bool quote = is_string && yaml_ambiguous(s);
    /* Multi-line text reads best as a literal block; libyaml falls back to
     * double quotes where a block is not allowed (keys, odd whitespace). */
    yaml_scalar_style_t style = quote                        ? YAML_DOUBLE_QUOTED_SCALAR_STYLE
                                : is_string && strchr(s, '\n') ? YAML_LITERAL_SCALAR_STYLE
                                                             : YAML_ANY_SCALAR_STYLE;
    if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s),
                                      !quote, 1, style))
        return -RE_ENOMEM;
    return yaml_emitter_emit(em, &ev) ? 0 : -RE_EIO;
}

static int yaml_value(yaml_emitter_t *em, const cJSON *v, int depth)
{
    yaml_event_t ev;
    char num[64];
    int r;

    if (depth > 64)
        return -RE_EDEPTH;
    if (cJSON_IsObject(v)) {
        if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_ANY_MAPPING_STYLE) ||
            !yaml_emitter_emit(em, &ev))
            return -RE_EIO;
        for (const cJSON *c = v->child; c; c = c->next) {
            if ((r = yaml_scalar(em, c->string ? c->string : "", true)) < 0 ||
                (r = yaml_value(em, c, depth + 1)) < 0)
                return r;
        }
        if (!yaml_mapping_end_event_initialize(&ev) || !yaml_emitter_emit(em, &ev))
            return -RE_EIO;
        return 0;
    }
    if (cJSON_IsArray(v)) {
        if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_ANY_SEQUENCE_STYLE) ||
            !yaml_emitter_emit(em, &ev))
            return -RE_EIO;
        for (const cJSON *c = v->child; c; c = c->next)
            if ((r = yaml_value(em, c, depth + 1)) < 0)
                return r;
        if (!yaml_sequence_end_event_initialize(&ev) || !yaml_emitter_emit(em, &ev))
            return -RE_EIO;
        return 0;
    }
    if (cJSON_IsString(v))
        return yaml_scalar(em, v->valuestring, true);
    if (cJSON_IsBool(v))
        return yaml_scalar(em, cJSON_IsTrue(v) ? "true" : "false", false);
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d == floor(d) && fabs(d) < 9007199254740992.0)
            re_snprintf(num, sizeof(num), "%lld", (long long)d);
        else
            re_snprintf(num, sizeof(num), "%.17g", d);
        return yaml_scalar(em, num, false);
    }
    return yaml_scalar(em, "null", false);
}

int ctl_print_yaml(FILE *f, const cJSON *v)
{
    yaml_emitter_t em;
    yaml_event_t ev;
    int r = -RE_EIO;

    if (!yaml_emitter_initialize(&em))
        return -RE_ENOMEM;
    yaml_emitter_set_output(&em, yaml_out, f);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_indent(&em, 2);
    yaml_emitter_set_width(&em, -1);
    if (!yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) || !yaml_emitter_emit(&em, &ev))
        goto out;
    if (!yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) ||
        !yaml_emitter_emit(&em, &ev))
        goto out;
    if ((r = yaml_value(&em, v, 0)) < 0)
        goto out;
    r = -RE_EIO;
    if (!yaml_document_end_event_initialize(&ev, 1) || !yaml_emitter_emit(&em, &ev))
        goto out;
    if (!yaml_stream_end_event_initialize(&ev) || !yaml_emitter_emit(&em, &ev))
        goto out;
    r = yaml_emitter_flush(&em) ? 0 : -RE_EIO;
out:
    yaml_emitter_delete(&em);
    return r;
}

/* ---- cells and tables ---- */

/* Appends s with control characters made visible. */
static int append_safe(struct re_buf *b, const char *s)
{
    int r = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && r == 0; p++) {
        if (*p == '\n')
            r = re_buf_append(b, "\\n", 2);
        else if (*p == '\t')
            r = re_buf_append(b, " ", 1);
        else if (*p < 0x20 || *p == 0x7f)
            r = re_buf_append(b, "?", 1);
        else
            r = re_buf_append(b, p, 1);
    }
    return r;
}

static int cell_value(struct re_buf *b, const cJSON *v, unsigned flags, bool top)
{
    int r = 0;

    if (cJSON_IsString(v)) {
        const char *s = v->valuestring;
        size_t n = strlen(s);
        if ((flags & CTL_COL_LINE) && strchr(s, '\n')) {
            char *line = re_str_dup((struct re_str){ s, strcspn(s, "\n") });
            if (!line)
                return -RE_ENOMEM;
            r = append_safe(b, line);
            free(line);
            return r;
        }
        if ((flags & CTL_COL_SHORT) && n > 12 && strspn(s, "0123456789abcdef") == n)
            return re_buf_append(b, s, 12);
        return append_safe(b, s);
    }
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if ((flags & CTL_COL_TIME) && d > 0 && d < 1e11) {
            char t[32];
            time_t tt = (time_t)d;
            struct tm tm;
            if (gmtime_r(&tt, &tm) && strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%SZ", &tm))
                return re_buf_append_str(b, t);
        }
        if (d == floor(d) && fabs(d) < 9007199254740992.0)
            return re_buf_printf(b, "%lld", (long long)d);
        return re_buf_printf(b, "%g", d);
    }
    if (cJSON_IsBool(v))
        return re_buf_append_str(b, cJSON_IsTrue(v) ? "true" : "false");
    if (cJSON_IsArray(v)) {
        if (flags & CTL_COL_COUNT)
            return re_buf_printf(b, "%d", cJSON_GetArraySize(v));
        if (top && !v->child)
            return re_buf_append_str(b, "-");
        for (const cJSON *c = v->child; c && r == 0; c = c->next) {
            if (c != v->child)
                r = re_buf_append(b, ",", 1);
            if (r == 0 && (flags & CTL_COL_NAMES) && cJSON_IsObject(c) &&
                ctl_field(c, "version|name"))
                r = cell_value(b, ctl_field(c, "version|name"), flags & ~CTL_COL_COUNT, false);
            else if (r == 0)
                r = cell_value(b, c, flags & ~CTL_COL_COUNT, false);
        }
        return r;
    }
    if (cJSON_IsObject(v)) {
        if (top && !v->child)
            return re_buf_append_str(b, "-");
        if (!top)
            r = re_buf_append(b, "{", 1);
        for (const cJSON *c = v->child; c && r == 0; c = c->next) {
            if (c != v->child)
                r = re_buf_append(b, ",", 1);
            if (r == 0)
                r = append_safe(b, c->string ? c->string : "");
            if (r == 0)
                r = re_buf_append(b, "=", 1);
            if (r == 0)
                r = cell_value(b, c, flags, false);
        }
        if (!top && r == 0)
            r = re_buf_append(b, "}", 1);
        return r;
    }
    return re_buf_append_str(b, top ? "-" : "null");
}

/* Number of UTF-8 characters (continuation bytes are not counted). */
static size_t utf8_width(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            n++;
    return n;
}

int ctl_cell(struct re_buf *out, const cJSON *v, unsigned flags)
{
    struct re_buf b;
    int r;

    re_buf_init(&b, CELL_BUF_MAX);
    r = v ? cell_value(&b, v, flags, true) : re_buf_append_str(&b, "-");
    if (r == -RE_ETOOBIG)
        r = 0;                   /* cut below anyway */
    if (r == 0 && !b.ptr)
        r = re_buf_append_str(&b, "");
    if (r == 0 && !(flags & CTL_COL_FULL) && utf8_width(b.ptr) > CELL_MAX_CHARS) {
        size_t chars = 0, i = 0;
        for (; b.ptr[i]; i++) {
            if (((unsigned char)b.ptr[i] & 0xc0) != 0x80 && ++chars > CELL_MAX_CHARS - 3)
                break;
        }
        b.len = i;
        b.ptr[i] = '\0';
        r = re_buf_append_str(&b, "...");
    }
    if (r == 0)
        r = re_buf_append(out, b.ptr, b.len);
    re_buf_release(&b);
    return r;
}

static const cJSON *field_path(const cJSON *obj, const char *path, size_t len)
{
    const cJSON *cur = obj;
    char name[128];
    while (len && cur) {
        const char *dot = memchr(path, '.', len);
        size_t n = dot ? (size_t)(dot - path) : len;
        if (n >= sizeof(name) || !cJSON_IsObject(cur))
            return NULL;
        memcpy(name, path, n);
        name[n] = '\0';
        cur = cJSON_GetObjectItemCaseSensitive(cur, name);
        path += dot ? n + 1 : n;
        len -= dot ? n + 1 : n;
    }
    return cur;
}

const cJSON *ctl_field(const cJSON *obj, const char *fields)
{
    while (fields && *fields) {
        const char *bar = strchr(fields, '|');
        size_t n = bar ? (size_t)(bar - fields) : strlen(fields);
        const cJSON *v = field_path(obj, fields, n);
        if (v)
            return v;
        fields = bar ? bar + 1 : NULL;
    }
    return NULL;
}

void ctl_print_safe(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f)
            fputc('?', f);
        else
            fputc(*p, f);
    }
}

static bool scalar_or_simple(const cJSON *v)
{
    if (!cJSON_IsArray(v) && !cJSON_IsObject(v))
        return true;
    for (const cJSON *c = v->child; c; c = c->next)
        if (cJSON_IsArray(c) || cJSON_IsObject(c))
            return false;
    return true;
}

/* Columns from the items themselves: members whose values fit a cell. */
static size_t auto_columns(struct ctl_column *cols, char headers[][48], const cJSON *items)
{
    size_t n = 0;
    for (const cJSON *it = items->child; it; it = it->next) {
        for (const cJSON *m = it->child; m && n < AUTO_MAX_COLS; m = m->next) {
            bool seen = false;
            if (!m->string || !scalar_or_simple(m) || strlen(m->string) >= 48)
                continue;
            for (size_t i = 0; i < n; i++)
                seen = seen || strcmp(cols[i].fields, m->string) == 0;
            if (seen)
                continue;
            cols[n].fields = m->string;
            cols[n].flags = 0;
            size_t k = 0;
            for (const char *p = m->string; *p; p++)
                headers[n][k++] = *p == '_' ? ' ' : (char)toupper((unsigned char)*p);
            headers[n][k] = '\0';
            cols[n].header = headers[n];
            n++;
        }
    }
    return n;
}

void ctl_print_table(FILE *f, const cJSON *items, const struct ctl_column *cols)
{
    struct ctl_column autocols[AUTO_MAX_COLS + 1];
    char headers[AUTO_MAX_COLS][48];
    size_t ncols = 0, nrows = (size_t)cJSON_GetArraySize(items);
    size_t width[32] = { 0 };
    bool present[32] = { false };
    struct re_buf *cells = NULL;

    if (!cols) {
        ncols = auto_columns(autocols, headers, items);
        autocols[ncols].header = NULL;
        cols = autocols;
    } else {
        while (ncols < 32 && cols[ncols].header)
            ncols++;
    }
    if (!ncols || !nrows)
        return;
    cells = calloc(nrows * ncols, sizeof(*cells));
    if (!cells) {
        fputs("error: out of memory\n", stderr);
        return;
    }
    size_t row = 0;
    for (const cJSON *it = items->child; it; it = it->next, row++) {
        for (size_t c = 0; c < ncols; c++) {
            struct re_buf *b = &cells[row * ncols + c];
            const cJSON *v = cJSON_IsObject(it) ? ctl_field(it, cols[c].fields)
                                                : (c == 0 ? it : NULL);
            re_buf_init(b, CELL_BUF_MAX);
            if (v)
                present[c] = true;
            if (ctl_cell(b, v, cols[c].flags) < 0 || !b->ptr)
                re_buf_append_str(b, "-");
            size_t w = utf8_width(b->ptr ? b->ptr : "");
            if (w > width[c])
                width[c] = w;
        }
    }
    present[0] = true;
    for (size_t c = 0; c < ncols; c++)
        if (strlen(cols[c].header) > width[c])
            width[c] = strlen(cols[c].header);
    /* The last shown column is not padded. */
    size_t last = 0;
    for (size_t c = 0; c < ncols; c++)
        if (present[c])
            last = c;
    for (size_t c = 0; c < ncols; c++) {
        if (!present[c])
            continue;
        fprintf(f, "%s", cols[c].header);
        if (c != last)
            fprintf(f, "%*s", (int)(width[c] - strlen(cols[c].header) + 3), "");
    }
    fputc('\n', f);
    for (size_t r = 0; r < nrows; r++) {
        for (size_t c = 0; c < ncols; c++) {
            const char *s = cells[r * ncols + c].ptr ? cells[r * ncols + c].ptr : "";
            if (!present[c])
                continue;
            fputs(s, f);
            if (c != last)
                fprintf(f, "%*s", (int)(width[c] - utf8_width(s) + 3), "");
        }
        fputc('\n', f);
    }
    for (size_t i = 0; i < nrows * ncols; i++)
        re_buf_release(&cells[i]);
    free(cells);
}

static bool array_of_objects(const cJSON *v)
{
    return cJSON_IsArray(v) && v->child && cJSON_IsObject(v->child);
}

void ctl_print_object(FILE *f, const cJSON *obj)
{
    size_t w = 0;

    if (!cJSON_IsObject(obj)) {
        struct re_buf b;
        re_buf_init(&b, CELL_BUF_MAX);
        if (cJSON_IsArray(obj) && array_of_objects(obj))
            ctl_print_table(f, obj, NULL);
        else if (cell_value(&b, obj, 0, true) == 0 && b.ptr)
            fprintf(f, "%s\n", b.ptr);
        re_buf_release(&b);
        return;
    }
    for (const cJSON *m = obj->child; m; m = m->next)
        if (m->string && !array_of_objects(m) && strlen(m->string) > w)
            w = strlen(m->string);
    for (const cJSON *m = obj->child; m; m = m->next) {
        struct re_buf b;
        if (!m->string || array_of_objects(m))
            continue;
        if (cJSON_IsString(m) && strchr(m->valuestring, '\n')) {
            /* Multi-line text (a manifest, a diff) as an indented block. */
            ctl_print_safe(f, m->string);
            fputs(":\n", f);
            for (const char *p = m->valuestring; *p;) {
                size_t n = strcspn(p, "\n");
                char *line = re_str_dup((struct re_str){ p, n });
                fputs("  ", f);
                ctl_print_safe(f, line ? line : "");
                fputc('\n', f);
                free(line);
                p += n + (p[n] == '\n');
            }
            continue;
        }
        re_buf_init(&b, CELL_BUF_MAX);
        /* Whole values here, not cut: this is the one place to read them. */
        if (cell_value(&b, m, 0, true) == 0) {
            ctl_print_safe(f, m->string);
            fprintf(f, ":%*s%s\n", (int)(w - strlen(m->string) + 2), "", b.ptr ? b.ptr : "");
        }
        re_buf_release(&b);
    }
    for (const cJSON *m = obj->child; m; m = m->next) {
        if (!m->string || !array_of_objects(m))
            continue;
        fputc('\n', f);
        ctl_print_safe(f, m->string);
        fputs(":\n", f);
        ctl_print_table(f, m, NULL);
    }
}
