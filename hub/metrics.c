/* metrics.c - named series in a small hash table, request latency histograms,
 * and their Prometheus text rendering. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "error.h"
#include "metrics.h"

#define SERIES_MAX_LEN 512
#define BUCKETS 1024

static const double latency_bounds[] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};
#define N_BOUNDS (sizeof(latency_bounds) / sizeof(latency_bounds[0]))

enum series_kind { KIND_COUNTER, KIND_GAUGE, KIND_FN };

struct series {
    struct series *next;          /* hash chain */
    char *name;                   /* with labels */
    size_t family_len;            /* name up to '{' */
    enum series_kind kind;
    double value;
    metrics_gauge_fn fn;
    void *arg;
};

struct family_desc {
    struct family_desc *next;
    char *family;
    char *type;
    char *help;
};

struct histogram {
    struct histogram *next;
    char *route;                  /* escaped label value */
    uint64_t counts[N_BOUNDS];    /* non-cumulative per bucket; +Inf = count */
    uint64_t count;
    double sum;
};

struct metrics {
    uv_mutex_t lock;
    struct series *table[BUCKETS];
    size_t n_series;
    struct family_desc *descs;
    struct histogram *hists;
};

static uint32_t hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

int metrics_new(struct metrics **out)
{
    struct metrics *m = calloc(1, sizeof(*m));
    if (!m)
        return -RE_ENOMEM;
    if (uv_mutex_init(&m->lock) != 0) {
        free(m);
        return -RE_ENOMEM;
    }
    metrics_describe(m, "resedge_http_requests_total", "counter",
                     "HTTP requests answered, by route pattern, method and status code.");
    metrics_describe(m, "resedge_http_connections_open", "gauge", "Open client connections.");
    metrics_describe(m, "resedge_tls_handshakes_total", "counter",
                     "Completed TLS handshakes: full, or resumed from a session ticket.");
    metrics_set(m, "resedge_http_connections_open", 0);
    metrics_add(m, "resedge_tls_handshakes_total{type=\"full\"}", 0);
    metrics_add(m, "resedge_tls_handshakes_total{type=\"resumed\"}", 0);
    *out = m;
    return 0;
}

void metrics_free(struct metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < BUCKETS; i++) {
        struct series *s = m->table[i];
        while (s) {
            struct series *n = s->next;
            free(s->name);
            free(s);
            s = n;
        }
    }
    while (m->descs) {
        struct family_desc *d = m->descs;
        m->descs = d->next;
        free(d->family);
        free(d->type);
        free(d->help);
        free(d);
    }
    while (m->hists) {
        struct histogram *h = m->hists;
        m->hists = h->next;
        free(h->route);
        free(h);
    }
    uv_mutex_destroy(&m->lock);
    free(m);
}

/* Finds or creates a series; lock held. */
static struct series *get_series(struct metrics *m, const char *name, enum series_kind kind)
{
    size_t len = strlen(name);
    uint32_t b = hash(name) % BUCKETS;
    struct series *s;
    if (len == 0 || len > SERIES_MAX_LEN)
        return NULL;
    for (s = m->table[b]; s; s = s->next)
        if (strcmp(s->name, name) == 0)
            return s;
    s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->name = strdup(name);
    if (!s->name) {
        free(s);
        return NULL;
    }
    const char *brace = strchr(name, '{');
    s->family_len = brace ? (size_t)(brace - name) : len;
    s->kind = kind;
    s->next = m->table[b];
    m->table[b] = s;
    m->n_series++;
    return s;
}

void metrics_add(struct metrics *m, const char *series, double v)
{
    if (!m)
        return;
    uv_mutex_lock(&m->lock);
    struct series *s = get_series(m, series, KIND_COUNTER);
    if (s)
        s->value += v;
    uv_mutex_unlock(&m->lock);
}

void metrics_inc(struct metrics *m, const char *series)
{
    metrics_add(m, series, 1);
}

void metrics_set(struct metrics *m, const char *series, double v)
{
    if (!m)
        return;
    uv_mutex_lock(&m->lock);
    struct series *s = get_series(m, series, KIND_GAUGE);
    if (s)
        s->value = v;
    uv_mutex_unlock(&m->lock);
}

void metrics_describe(struct metrics *m, const char *family, const char *type, const char *help)
{
    struct family_desc *d;
    if (!m)
        return;
    uv_mutex_lock(&m->lock);
    for (d = m->descs; d; d = d->next)
        if (strcmp(d->family, family) == 0)
            break;
    if (!d) {
        d = calloc(1, sizeof(*d));
        if (!d || !(d->family = strdup(family))) {
            free(d);
            goto out;
        }
        d->next = m->descs;
        m->descs = d;
    }
    free(d->type);
    free(d->help);
    d->type = type ? strdup(type) : NULL;
    d->help = help ? strdup(help) : NULL;
out:
    uv_mutex_unlock(&m->lock);
}

int metrics_gauge_fn_add(struct metrics *m, const char *series, const char *help,
                         metrics_gauge_fn fn, void *arg)
{
    if (!m || !fn)
        return -RE_EINVAL;
    if (help) {
        char fam[SERIES_MAX_LEN + 1];
        size_t n = strcspn(series, "{");
        if (n > SERIES_MAX_LEN)
            return -RE_ETOOBIG;
        memcpy(fam, series, n);
        fam[n] = '\0';
        metrics_describe(m, fam, "gauge", help);
    }
    uv_mutex_lock(&m->lock);
    struct series *s = get_series(m, series, KIND_FN);
    if (s) {
        s->kind = KIND_FN;
        s->fn = fn;
        s->arg = arg;
    }
    uv_mutex_unlock(&m->lock);
    return s ? 0 : -RE_ENOMEM;
}

const char *metrics_escape_label(char *out, size_t size, const char *value)
{
    size_t o = 0;
    if (size == 0)
        return out;
    for (const char *p = value ? value : ""; *p && o + 2 < size; p++) {
        if (*p == '\\' || *p == '"') {
            out[o++] = '\\';
            out[o++] = *p;
        } else if (*p == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
    return out;
}

void metrics_observe_request(struct metrics *m, const char *route, const char *method,
                             int status, double seconds)
{
    char r[256], me[32], series[SERIES_MAX_LEN + 1];
    struct histogram *h;
    if (!m)
        return;
    metrics_escape_label(r, sizeof(r), route ? route : "none");
    metrics_escape_label(me, sizeof(me), method ? method : "");
    snprintf(series, sizeof(series),
             "resedge_http_requests_total{route=\"%s\",method=\"%s\",code=\"%d\"}", r, me, status);
    metrics_inc(m, series);

    uv_mutex_lock(&m->lock);
    for (h = m->hists; h; h = h->next)
        if (strcmp(h->route, r) == 0)
            break;
    if (!h) {
        h = calloc(1, sizeof(*h));
        if (!h || !(h->route = strdup(r))) {
            free(h);
            goto out;
        }
        h->next = m->hists;
        m->hists = h;
    }
    for (size_t i = 0; i < N_BOUNDS; i++) {
        if (seconds <= latency_bounds[i]) {
            h->counts[i]++;
            break;
        }
    }
    h->count++;
    h->sum += seconds;
out:
    uv_mutex_unlock(&m->lock);
}

void metrics_tls_handshake(struct metrics *m, bool resumed)
{
    metrics_inc(m, resumed ? "resedge_tls_handshakes_total{type=\"resumed\"}"
                           : "resedge_tls_handshakes_total{type=\"full\"}");
}

void metrics_connections(struct metrics *m, int delta)
{
    metrics_add(m, "resedge_http_connections_open", delta);
}

static int cmp_series(const void *a, const void *b)
{
    const struct series *x = *(const struct series *const *)a;
    const struct series *y = *(const struct series *const *)b;
    return strcmp(x->name, y->name);
}

static const struct family_desc *find_desc(const struct metrics *m, const char *fam, size_t len)
{
    for (const struct family_desc *d = m->descs; d; d = d->next)
        if (strlen(d->family) == len && memcmp(d->family, fam, len) == 0)
            return d;
    return NULL;
}

static int render_value(struct re_buf *out, double v)
{
    if (v == (double)(long long)v && v < 9e15 && v > -9e15)
        return re_buf_printf(out, "%lld\n", (long long)v);
    return re_buf_printf(out, "%.9g\n", v);
}

int metrics_render(struct metrics *m, struct re_buf *out)
{
    struct series **all = NULL;
    size_t n = 0;
    int r = 0;

    uv_mutex_lock(&m->lock);
    all = malloc(sizeof(*all) * (m->n_series ? m->n_series : 1));
    if (!all) {
        r = -RE_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < BUCKETS; i++)
        for (struct series *s = m->table[i]; s; s = s->next)
            all[n++] = s;
    qsort(all, n, sizeof(*all), cmp_series);
    for (size_t i = 0; i < n && r == 0; i++) {
        struct series *s = all[i];
        bool first = i == 0 || all[i - 1]->family_len != s->family_len ||
                     memcmp(all[i - 1]->name, s->name, s->family_len) != 0;
        if (first) {
            const struct family_desc *d = find_desc(m, s->name, s->family_len);
            const char *type = d && d->type ? d->type
                               : s->kind == KIND_COUNTER ? "counter" : "gauge";
            if (d && d->help)
                r = re_buf_printf(out, "# HELP %.*s %s\n", (int)s->family_len, s->name, d->help);
            if (r == 0)
                r = re_buf_printf(out, "# TYPE %.*s %s\n", (int)s->family_len, s->name, type);
        }
        double v = s->kind == KIND_FN ? s->fn(s->arg) : s->value;
        if (r == 0)
            r = re_buf_printf(out, "%s ", s->name);
        if (r == 0)
            r = render_value(out, v);
    }
    if (r == 0 && m->hists) {
        r = re_buf_append_str(out,
                              "# HELP resedge_http_request_duration_seconds Time from the first "
                              "byte of a request to its response being queued.\n"
                              "# TYPE resedge_http_request_duration_seconds histogram\n");
        for (struct histogram *h = m->hists; h && r == 0; h = h->next) {
            uint64_t cum = 0;
            for (size_t i = 0; i < N_BOUNDS && r == 0; i++) {
                cum += h->counts[i];
                r = re_buf_printf(out,
                                  "resedge_http_request_duration_seconds_bucket{route=\"%s\","
                                  "le=\"%g\"} %llu\n",
                                  h->route, latency_bounds[i], (unsigned long long)cum);
            }
            if (r == 0)
                r = re_buf_printf(out,
                                  "resedge_http_request_duration_seconds_bucket{route=\"%s\","
                                  "le=\"+Inf\"} %llu\n"
                                  "resedge_http_request_duration_seconds_sum{route=\"%s\"} %.9g\n"
                                  "resedge_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                                  h->route, (unsigned long long)h->count, h->route, h->sum,
                                  h->route, (unsigned long long)h->count);
        }
    }
out:
    uv_mutex_unlock(&m->lock);
    free(all);
    return r;
}
