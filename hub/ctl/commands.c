/* commands.c - what each resedgectl command sends to the hub and how it
 * shows the answer. Most commands are rows in one table over a few generic
 * handlers: list (with cursor paging), get, create/update/delete, call. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "conf.h"
#include "ctl.h"
#include "error.h"
#include "fsutil.h"
#include "json.h"

#define SELECT_PAGE "1000"
#define MAX_PAGES 100000

/* ---- columns ---- */

static const struct ctl_column group_cols[] = {
    { "PATH", "path|name", 0 },
    { "CLUSTERS", "clusters|cluster_count|clusters_count", CTL_COL_COUNT },
    { "METADATA", "metadata", 0 },
    { NULL, NULL, 0 },
};
static const struct ctl_column cluster_cols[] = {
    { "NAME", "name", 0 },
    { "GROUPS", "groups", 0 },
    /* "agent" is what the cluster's agent last reported (hub/api_checkin.h). */
    { "STATUS", "agent.status", 0 },
    { "DESIRED", "desired_revision", CTL_COL_SHORT },
    { "APPLIED", "agent.applied_revision", CTL_COL_SHORT },
    { "LAST SEEN", "agent.last_seen", CTL_COL_TIME },
    { "PINNED", "pinned_revision", CTL_COL_SHORT },
    { NULL, NULL, 0 },
};
static const struct ctl_column namespace_cols[] = {
    { "NAME", "name", 0 },
    { "EXPRESSION", "expression|selection|selector", 0 },
    { "OWNERS", "owners", 0 },
    { "QUOTA", "quota|resource_quota", 0 },
    { NULL, NULL, 0 },
};
static const struct ctl_column app_cols[] = {
    { "NAME", "name", 0 },
    { "NAMESPACE", "namespace", 0 },
    { "OWNER", "owner", 0 },
    { "VERSIONS", "versions", CTL_COL_NAMES },
    { NULL, NULL, 0 },
};
static const struct ctl_column policy_cols[] = {
    { "NAME", "name", 0 },
    { "EXPRESSION", "expression|selection", 0 },
    { "NAMESPACES", "namespaces", 0 },
    { NULL, NULL, 0 },
};
static const struct ctl_column audit_cols[] = {
    { "ID", "id", 0 },
    { "TIME", "time|at|created_at|timestamp", CTL_COL_TIME },
    { "ACTOR", "actor|who", 0 },
    { "ACTION", "action|op|operation", 0 },
    { "ENTITY", "entity|entity_type|kind", 0 },
    { "NAME", "entity_name|name|target", 0 },
    { NULL, NULL, 0 },
};
static const struct ctl_column history_cols[] = {
    { "REV", "rev|revision|commit|id", CTL_COL_SHORT },
    { "TIME", "time|when|date", CTL_COL_TIME },
    { "AUTHOR", "author|who", 0 },
    { "MESSAGE", "message|what|summary", CTL_COL_LINE | CTL_COL_FULL },
    { NULL, NULL, 0 },
};
static const struct ctl_column config_cols[] = {
    { "KEY", "key", 0 },
    { "VALUE", "value", 0 },
    { "SOURCE", "source|from|origin", 0 },
    { NULL, NULL, 0 },
};

static const struct ctl_column conflict_cols[] = {
    { "KEY", "key", 0 },
    { "CANDIDATES", "candidates|sources", CTL_COL_FULL },
    { NULL, NULL, 0 },
};

static const struct ctl_resource res_groups = { "groups", "group", "/api/v1/groups", "path", group_cols };
static const struct ctl_resource res_clusters = { "clusters", "cluster", "/api/v1/clusters", "name", cluster_cols };
static const struct ctl_resource res_namespaces = { "namespaces", "namespace", "/api/v1/namespaces", "name", namespace_cols };
static const struct ctl_resource res_apps = { "apps", "application", "/api/v1/applications", "name", app_cols };
static const struct ctl_resource res_policies = { "policies", "policy", "/api/v1/policies", "name", policy_cols };
static const struct ctl_resource res_audit = { "audit", "audit record", "/api/v1/audit", "id", audit_cols };
static const struct ctl_resource res_history = { "history", "commit", NULL, "rev", history_cols };

/* ---- helpers ---- */

static int oom(void)
{
    fputs("error: out of memory\n", stderr);
    return CTL_ESERVER;
}

/* Expands {1}, {2}... with positionals (percent-encoded when escape). */
static int expand(struct re_buf *out, const char *tmpl, const char *const *pos, size_t npos,
                  bool escape)
{
    int r = 0;
    for (const char *p = tmpl; *p && r == 0; p++) {
        if (p[0] == '{' && p[1] >= '1' && p[1] <= '9' && p[2] == '}') {
            size_t i = (size_t)(p[1] - '1');
            if (i < npos)
                r = escape ? ctl_escape(out, pos[i]) : re_buf_append_str(out, pos[i]);
            p += 2;
        } else {
            r = re_buf_append(out, p, 1);
        }
    }
    return r;
}

static int item_path(struct re_buf *out, const struct ctl_resource *res, const char *name)
{
    int r = re_buf_printf(out, "%s/", res->api);
    return r < 0 ? r : ctl_escape(out, name);
}

static int print_value(struct ctl *c, const cJSON *v)
{
    if (!v)
        return CTL_OK;
    if (c->format == CTL_FMT_JSON)
        ctl_print_json(stdout, v);
    else if (c->format == CTL_FMT_YAML)
        ctl_print_yaml(stdout, v);
    else
        ctl_print_object(stdout, v);
    return CTL_OK;
}

static void print_done(const char *tmpl, const char *const *pos, size_t npos)
{
    struct re_buf b;
    re_buf_init(&b, 8192);
    if (expand(&b, tmpl, pos, npos, false) == 0 && b.ptr) {
        ctl_print_safe(stdout, b.ptr);
        fputc('\n', stdout);
    }
    re_buf_release(&b);
}

__attribute__((format(printf, 1, 2))) static bool usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return false;
}

/* ---- request bodies ---- */

/* Sets path ("a.b.c") in root to v, creating objects on the way; takes v. */
static int json_set_path(cJSON *root, const char *path, size_t len, cJSON *v)
{
    char seg[256];
    cJSON *cur = root;

    for (;;) {
        const char *dot = memchr(path, '.', len);
        size_t n = dot ? (size_t)(dot - path) : len;
        if (n == 0 || n >= sizeof(seg)) {
            cJSON_Delete(v);
            return -RE_EINVAL;
        }
        memcpy(seg, path, n);
        seg[n] = '\0';
        if (!dot) {
            if (cJSON_GetObjectItemCaseSensitive(cur, seg))
                cJSON_ReplaceItemInObjectCaseSensitive(cur, seg, v);
            else
                cJSON_AddItemToObject(cur, seg, v);
            return 0;
        }
        cJSON *next = cJSON_GetObjectItemCaseSensitive(cur, seg);
        if (!cJSON_IsObject(next)) {
            if (!(next = cJSON_CreateObject())) {
                cJSON_Delete(v);
                return -RE_ENOMEM;
            }
            if (cJSON_GetObjectItemCaseSensitive(cur, seg))
                cJSON_ReplaceItemInObjectCaseSensitive(cur, seg, next);
            else
                cJSON_AddItemToObject(cur, seg, next);
        }
        cur = next;
        path += n + 1;
        len -= n + 1;
    }
}

/* --set F=V (string) or F:=JSON. */
static bool body_set(cJSON *root, const char *spec)
{
    const char *eq = strchr(spec, '=');
    cJSON *v = NULL;
    bool raw;
    size_t klen;

    if (!eq || eq == spec)
        return usage_error("--set needs FIELD=VALUE (or FIELD:=JSON), got '%s'", spec);
    raw = eq[-1] == ':';
    klen = (size_t)(eq - spec) - (raw ? 1 : 0);
    if (raw) {
        size_t errpos = 0;
        if (re_json_parse(&v, re_str_c(eq + 1), RE_JSON_DEFAULT_DEPTH, &errpos) < 0)
            return usage_error("--set %s: the value after ':=' is not JSON (quote strings)", spec);
    } else if (!(v = cJSON_CreateString(eq + 1))) {
        oom();
        return false;
    }
    if (json_set_path(root, spec, klen, v) < 0)
        return usage_error("--set %s: bad field name", spec);
    return true;
}

static cJSON *object_member(cJSON *root, const char *name, bool array)
{
    cJSON *m = cJSON_GetObjectItemCaseSensitive(root, name);
    if (array ? cJSON_IsArray(m) : cJSON_IsObject(m))
        return m;
    m = array ? cJSON_CreateArray() : cJSON_CreateObject();
    if (!m)
        return NULL;
    if (cJSON_GetObjectItemCaseSensitive(root, name))
        cJSON_ReplaceItemInObjectCaseSensitive(root, name, m);
    else
        cJSON_AddItemToObject(root, name, m);
    return m;
}

/* Reads -f FILE ("-" = stdin) as a JSON object. */
static bool body_from_file(cJSON **out, const char *file)
{
    struct re_buf text;
    size_t errpos = 0;
    int r;
    bool ok = false;

    re_buf_init(&text, CTL_MAX_INPUT);
    r = re_read_file(&text, strcmp(file, "-") == 0 ? "/dev/stdin" : file);
    if (r < 0) {
        fprintf(stderr, "error: cannot read '%s': %s\n", file, re_strerror(r));
        goto out;
    }
    r = re_json_parse(out, re_buf_str(&text), RE_JSON_DEFAULT_DEPTH, &errpos);
    if (r < 0) {
        fprintf(stderr, "error: '%s' is not valid JSON: %s at byte %zu\n", file, re_strerror(r),
                errpos);
        goto out;
    }
    if (!cJSON_IsObject(*out)) {
        fprintf(stderr, "error: '%s' must hold a JSON object\n", file);
        cJSON_Delete(*out);
        *out = NULL;
        goto out;
    }
    ok = true;
out:
    re_buf_release(&text);
    return ok;
}

/* The body of create/update from -f, NAME and the flags. NULL on error (printed). */
static cJSON *build_body(const struct ctl_resource *res, const struct ctl_args *a, const char *name,
                         bool *changed)
{
    cJSON *root = NULL;
    const char *v, *file = ctl_arg(a, "file");
    size_t it = 0;

    *changed = false;
    if (file) {
        if (!body_from_file(&root, file))
            return NULL;
        *changed = root->child != NULL;
    } else if (!(root = cJSON_CreateObject())) {
        oom();
        return NULL;
    }
    if (name) {
        cJSON *n = cJSON_CreateString(name);
        if (!n || json_set_path(root, res->key, strlen(res->key), n) < 0)
            goto fail;
    }
    while (ctl_arg_iter(a, "set", &it, &v)) {
        if (!body_set(root, v))
            goto fail;
        *changed = true;
    }
    it = 0;
    while (ctl_arg_iter(a, "set-file", &it, &v)) {
        const char *eq = strchr(v, '=');
        struct re_buf text;
        int r;
        if (!eq || eq == v || !eq[1]) {
            usage_error("--set-file needs FIELD=FILE, got '%s'", v);
            goto fail;
        }
        re_buf_init(&text, CTL_MAX_INPUT);
        if ((r = re_read_file(&text, eq + 1)) < 0) {
            fprintf(stderr, "error: cannot read '%s': %s\n", eq + 1, re_strerror(r));
            re_buf_release(&text);
            goto fail;
        }
        cJSON *s = cJSON_CreateString(text.ptr ? text.ptr : "");
        re_buf_release(&text);
        if (!s || json_set_path(root, v, (size_t)(eq - v), s) < 0) {
            usage_error("--set-file %s: bad field name", v);
            goto fail;
        }
        *changed = true;
    }
    it = 0;
    while (ctl_arg_iter(a, "metadata", &it, &v)) {
        const char *eq = strchr(v, '=');
        cJSON *md = object_member(root, "metadata", false);
        if (!eq || eq == v) {
            usage_error("--metadata needs KEY=VALUE, got '%s'", v);
            goto fail;
        }
        char *k = re_str_dup((struct re_str){ v, (size_t)(eq - v) });
        cJSON *s = cJSON_CreateString(eq + 1);
        if (!md || !k || !s) {
            free(k);
            cJSON_Delete(s);
            oom();
            goto fail;
        }
        if (cJSON_GetObjectItemCaseSensitive(md, k))
            cJSON_ReplaceItemInObjectCaseSensitive(md, k, s);
        else
            cJSON_AddItemToObject(md, k, s);
        free(k);
        *changed = true;
    }
    it = 0;
    bool groups_reset = false;
    while (ctl_arg_iter(a, "group", &it, &v)) {
        cJSON *g = object_member(root, "groups", true);
        cJSON *s = cJSON_CreateString(v);
        if (!g || !s) {
            cJSON_Delete(s);
            oom();
            goto fail;
        }
        if (!groups_reset) {
            /* --group replaces what -f said: the flags are the list. */
            while (cJSON_GetArraySize(g) > 0)
                cJSON_DeleteItemFromArray(g, 0);
            groups_reset = true;
        }
        cJSON_AddItemToArray(g, s);
        *changed = true;
    }
    if ((v = ctl_arg(a, "expression"))) {
        cJSON *s = cJSON_CreateString(v);
        if (!s || json_set_path(root, "expression", 10, s) < 0)
            goto fail;
        *changed = true;
    }
    return root;
fail:
    cJSON_Delete(root);
    return NULL;
}

/* ---- list ---- */

static int add_filters(struct re_buf *p, const struct ctl_args *a)
{
    static const char *const simple[] = { "limit", "search", "expression", "namespace",
                                          "orderby", "entity", "actor", NULL };
    const char *v;
    size_t it = 0;
    int r = 0;

    for (int i = 0; simple[i] && r == 0; i++)
        if ((v = ctl_arg(a, simple[i])))
            r = ctl_query_add(p, simple[i], v);
    while (r == 0 && ctl_arg_iter(a, "group", &it, &v))
        r = ctl_query_add(p, "group", v);
    if (r == 0 && ctl_flag(a, "pinned"))
        r = ctl_query_add(p, "pinned", "true");
    it = 0;
    while (r == 0 && ctl_arg_iter(a, "metadata", &it, &v)) {
        const char *eq = strchr(v, '=');
        struct re_buf k;
        if (!eq || eq == v) {
            usage_error("--metadata needs KEY=VALUE, got '%s'", v);
            return -RE_EINVAL;
        }
        re_buf_init(&k, 4096);
        r = re_buf_printf(&k, "metadata.%.*s", (int)(eq - v), v);
        if (r == 0)
            r = ctl_query_add(p, k.ptr, eq + 1);
        re_buf_release(&k);
    }
    return r;
}

/* GETs base (with its query) page by page. With all, follows "next" and
 * returns {"items": [every item], "next": null}; otherwise the first page. */
static int fetch_pages(struct ctl *c, const char *base, const char *first_cursor, bool all,
                       cJSON **out)
{
    cJSON *result = NULL, *items_all = NULL, *page = NULL;
    char *cursor = first_cursor ? strdup(first_cursor) : NULL;
    struct re_buf path;
    int ret = CTL_ESERVER;

    re_buf_init(&path, 64 * 1024);
    if (first_cursor && !cursor)
        return oom();
    for (unsigned n = 0;; n++) {
        re_buf_reset(&path);
        if (re_buf_append_str(&path, base) < 0 || (cursor && ctl_query_add(&path, "next", cursor) < 0)) {
            ret = oom();
            goto out;
        }
        if ((ret = ctl_call(c, "GET", path.ptr, NULL, NULL, &page)) != CTL_OK)
            goto out;
        cJSON *items = cJSON_GetObjectItemCaseSensitive(page, "items");
        if (!cJSON_IsArray(items)) {
            fputs("error: the hub's answer has no \"items\" list\n", stderr);
            ret = CTL_ESERVER;
            goto out;
        }
        if (!all) {
            result = page;
            page = NULL;
            break;
        }
        if (!items_all && !(items_all = cJSON_CreateArray())) {
            ret = oom();
            goto out;
        }
        while (items->child) {
            cJSON *it = cJSON_DetachItemViaPointer(items, items->child);
            cJSON_AddItemToArray(items_all, it);
        }
        const cJSON *next = cJSON_GetObjectItemCaseSensitive(page, "next");
        if (!cJSON_IsString(next) || !*next->valuestring)
            break;
        if (cursor && strcmp(cursor, next->valuestring) == 0) {
            fputs("error: the hub returned the same cursor twice; stopping\n", stderr);
            ret = CTL_ESERVER;
            goto out;
        }
        if (n + 1 >= MAX_PAGES) {
            fprintf(stderr, "error: more than %d pages; stopping\n", MAX_PAGES);
            ret = CTL_ESERVER;
            goto out;
        }
        free(cursor);
        if (!(cursor = strdup(next->valuestring))) {
            ret = oom();
            goto out;
        }
        cJSON_Delete(page);
        page = NULL;
    }
    if (all) {
        if (!(result = cJSON_CreateObject())) {
            ret = oom();
            goto out;
        }
        if (!items_all)
            items_all = cJSON_CreateArray();
        cJSON_AddItemToObject(result, "items", items_all);
        items_all = NULL;
        cJSON_AddNullToObject(result, "next");
    }
    *out = result;
    ret = CTL_OK;
out:
    cJSON_Delete(page);
    cJSON_Delete(items_all);
    free(cursor);
    re_buf_release(&path);
    return ret;
}

static int cmd_list(struct ctl *c, const struct ctl_cmd *cmd, const struct ctl_args *a,
                    const char *const *pos, size_t npos)
{
    const struct ctl_resource *res = cmd->res;
    struct re_buf base;
    cJSON *result = NULL;
    int ret;

    re_buf_init(&base, 64 * 1024);
    if ((cmd->tmpl ? expand(&base, cmd->tmpl, pos, npos, true) : re_buf_append_str(&base, res->api)) < 0) {
        ret = oom();
        goto out;
    }
    if (add_filters(&base, a) < 0) {
        ret = CTL_EUSAGE;
        goto out;
    }
    ret = fetch_pages(c, base.ptr, ctl_arg(a, "next"), ctl_flag(a, "all"), &result);
    if (ret != CTL_OK)
        goto out;
    if (c->format != CTL_FMT_TABLE) {
        print_value(c, result);
        goto out;
    }
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(result, "items");
    if (!cJSON_GetArraySize(items))
        fprintf(stderr, "no %s found\n", strcmp(res->noun, "audit") == 0 ? "audit records" : res->noun);
    else
        ctl_print_table(stdout, items, cmd->cols ? cmd->cols : res->cols);
    const cJSON *next = cJSON_GetObjectItemCaseSensitive(result, "next");
    if (cJSON_IsString(next) && *next->valuestring) {
        fflush(stdout);
        fputs("(more: use --all, or --next ", stderr);
        ctl_print_safe(stderr, next->valuestring);
        fputs(")\n", stderr);
    }
out:
    cJSON_Delete(result);
    re_buf_release(&base);
    return ret;
}

/* ---- get / create / update / delete ---- */

static int cmd_get(struct ctl *c, const struct ctl_cmd *cmd, const struct ctl_args *a,
                   const char *const *pos, size_t npos)
{
    struct re_buf path;
    cJSON *v = NULL;
    int ret;

    re_buf_init(&path, 64 * 1024);
    if (item_path(&path, cmd->res, pos[0]) < 0) {
        ret = oom();
        goto out;
    }
    if ((ret = ctl_call(c, "GET", path.ptr, NULL, NULL, &v)) != CTL_OK)
        goto out;
    /* for people the record's counter is its revision (JSON and YAML keep
     * the API's "version") */
    cJSON *ver = c->format == CTL_FMT_TABLE ? cJSON_GetObjectItemCaseSensitive(v, "version") : NULL;
    if (cJSON_IsNumber(ver) && ver->string && strcmp(ver->string, "version") == 0) {
        char *name = strdup("revision");
        if (name) {
            free(ver->string);
            ver->string = name;
        }
    }
    ret = print_value(c, v);
out:
    cJSON_Delete(v);
    re_buf_release(&path);
    return ret;
}

/* The rest of a dry run's answer: which clusters' branches would change,
 * the diff of one of them, and anything else the hub said. */
static void print_preview(const cJSON *v)
{
    const cJSON *names = ctl_field(v, "clusters"), *count = ctl_field(v, "clusters_count");
    const cJSON *exact = ctl_field(v, "exact"), *diff = ctl_field(v, "diff");
    static const char *const shown[] = { "dry_run", "status", "result", "clusters",
                                         "clusters_count", "exact", "diff" };

    if (cJSON_IsArray(names)) {
        long long listed = cJSON_GetArraySize(names);
        long long n = cJSON_IsNumber(count) ? (long long)count->valuedouble : listed;
        printf("clusters whose branch would change: %s%lld\n", cJSON_IsFalse(exact) ? "at least " : "", n);
        for (const cJSON *e = names->child; e; e = e->next) {
            if (!cJSON_IsString(e))
                continue;
            fputs("  ", stdout);
            ctl_print_safe(stdout, e->valuestring);
            fputc('\n', stdout);
        }
        if (n > listed)
            printf("  ... and %lld more\n", n - listed);
    }
    const cJSON *patch = ctl_field(diff, "patch"), *cluster = ctl_field(diff, "cluster");
    if (cJSON_IsString(patch) && *patch->valuestring) {
        fputs("\ndiff of cluster '", stdout);
        ctl_print_safe(stdout, cJSON_IsString(cluster) ? cluster->valuestring : "?");
        fputs("':\n", stdout);
        ctl_print_safe(stdout, patch->valuestring);
        if (cJSON_IsTrue(ctl_field(diff, "truncated")))
            fputs("(diff truncated)\n", stdout);
    }
    cJSON *rest = cJSON_Duplicate(v, 1);
    if (!rest)
        return;
    for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++)
        cJSON_DeleteItemFromObjectCaseSensitive(rest, shown[i]);
    if (rest->child)
        ctl_print_object(stdout, rest);
    cJSON_Delete(rest);
}

/* --diff CLUSTER implies --dry-run. */
static bool is_dry_run(const struct ctl_args *a)
{
    return ctl_flag(a, "dry-run") || ctl_arg(a, "diff");
}

/* What a mutating command prints: the answer, or one line for people. */
static int print_change(struct ctl *c, const cJSON *v, const char *verb,
                        const struct ctl_resource *res, const char *name, const struct ctl_args *a)
{
    if (is_dry_run(a)) {
        if (c->format != CTL_FMT_TABLE || !cJSON_IsObject(v))
            return print_value(c, v);
        /* {"dry_run": true, "status": N, "result": {...}, preview...} */
        fputs("dry run: nothing was changed\n", stderr);
        printf("would be %s: %s '", verb, res->singular);
        ctl_print_safe(stdout, name ? name : "?");
        fputs("'\n", stdout);
        print_preview(v);
        return CTL_OK;
    }
    if (c->format != CTL_FMT_TABLE)
        return print_value(c, v);
    const cJSON *key = v ? cJSON_GetObjectItemCaseSensitive(v, res->key) : NULL;
    /* the record's counter: the API's "version", the CLI's "revision" (an
     * application's versions are another thing) */
    const cJSON *version = v ? cJSON_GetObjectItemCaseSensitive(v, "version") : NULL;
    printf("%s %s '", verb, res->singular);
    ctl_print_safe(stdout, cJSON_IsString(key) ? key->valuestring : name ? name : "?");
    fputc('\'', stdout);
    if (cJSON_IsNumber(version))
        printf(" (revision %lld)", (long long)version->valuedouble);
    fputc('\n', stdout);
    return CTL_OK;
}

/* ?dry_run=true, and ?diff=CLUSTER to see that cluster's diff (--diff implies
 * --dry-run). -1 when out of memory. */
static int add_dry_run(struct re_buf *path, const struct ctl_args *a)
{
    const char *diff = ctl_arg(a, "diff");
    if (!is_dry_run(a))
        return 0;
    if (ctl_query_add(path, "dry_run", "true") < 0 ||
        (diff && ctl_query_add(path, "diff", diff) < 0))
        return -1;
    return 0;
}

/* Sends a change (create, update, delete) to path, as a dry run with
 * --dry-run (If-Match from --if-match), and prints what it did as verb. */
static int send_change(struct ctl *c, const struct ctl_args *a, const char *method,
                       struct re_buf *path, const cJSON *body, const char *verb,
                       const struct ctl_resource *res, const char *name)
{
    cJSON *v = NULL;
    int ret;
    if (add_dry_run(path, a) < 0)
        return oom();
    if ((ret = ctl_call(c, method, path->ptr, body, ctl_arg(a, "if-match"), &v)) == CTL_OK)
        ret = print_change(c, v, verb, res, name, a);
    cJSON_Delete(v);
    return ret;
}

static int cmd_create(struct ctl *c, const struct ctl_cmd *cmd, const struct ctl_args *a,
                      const char *const *pos, size_t npos)
{
    const struct ctl_resource *res = cmd->res;
    const char *name = npos ? pos[0] : NULL;
    struct re_buf path;
    cJSON *body = NULL;
    bool changed;
    int ret = CTL_EUSAGE;

    re_buf_init(&path, 64 * 1024);
    if (!name && !ctl_arg(a, "file")) {
        fprintf(stderr, "error: give the %s's %s, or -f FILE\n", res->singular, res->key);
        goto out;
    }
    if (!(body = build_body(res, a, name, &changed)))
        goto out;
    if (re_buf_append_str(&path, res->api) < 0) {
        ret = oom();
        goto out;
    }
    ret = send_change(c, a, "POST", &path, body, "created", res, name);
out:
    cJSON_Delete(body);
    re_buf_release(&path);
    return ret;
}

static int cmd_update(struct ctl *c, const struct ctl_cmd *cmd, const struct ctl_args *a,
                      const char *const *pos, size_t npos)
{
    const struct ctl_resource *res = cmd->res;
    struct re_buf path;
    cJSON *body = NULL;
    bool changed;
    int ret = CTL_EUSAGE;

    re_buf_init(&path, 64 * 1024);
    if (!(body = build_body(res, a, NULL, &changed)))
        goto out;
    if (!changed) {
        fprintf(stderr, "error: nothing to change: give --set FIELD=VALUE, --set-file, --metadata or -f\n"
                        "hint: 'resedgectl %s --help' lists the fields of %s %s\n", cmd->words,
                strchr("aeiou", res->singular[0]) ? "an" : "a", res->singular);
        goto out;
    }
    if (item_path(&path, res, pos[0]) < 0) {
        ret = oom();
        goto out;
    }
    ret = send_change(c, a, "PATCH", &path, body, "updated", res, pos[0]);
out:
    cJSON_Delete(body);
    re_buf_release(&path);
    return ret;
}

static int cmd_delete(struct ctl *c, const struct ctl_cmd *cmd, const struct ctl_args *a,
                      const char *const *pos, size_t npos)
{
    struct re_buf path;
    int ret;

    re_buf_init(&path, 64 * 1024);
    if (item_path(&path, cmd->res, pos[0]) < 0 ||
        (ctl_flag(a, "cascade") && ctl_query_add(&path, "cascade", "true") < 0))
        ret = oom();
    else
        ret = send_change(c, a, "DELETE", &path, NULL, "deleted", cmd->res, pos[0]);
    re_buf_release(&path);
    return ret;
}

/* ---- generic call: method + path template + small body ---- */

static int body_from_spec(cJSON **out, const char *spec, const struct ctl_args *a,
                          const char *const *pos, size_t npos)
{
    cJSON *root = cJSON_CreateObject();
    const char *p = spec;

    if (!root)
        return -RE_ENOMEM;
    while (*p) {
        char tok[64];
        size_t n = strcspn(p, " ");
        if (n == 0 || n >= sizeof(tok)) {
            p += n ? n : 1;
            continue;
        }
        memcpy(tok, p, n);
        tok[n] = '\0';
        p += n;
        char *eq = strchr(tok, '=');
        const char *val;
        if (n > 1 && tok[n - 1] == '?') {  /* name?: a boolean flag, sent as true */
            tok[n - 1] = '\0';
            if (ctl_flag(a, tok) && !cJSON_AddTrueToObject(root, tok)) {
                cJSON_Delete(root);
                return -RE_ENOMEM;
            }
            continue;
        }
        if (eq && eq[1] == '$') {        /* key=$N: a positional */
            *eq = '\0';
            size_t i = (size_t)(eq[2] - '1');
            val = i < npos ? pos[i] : NULL;
        } else {
            val = ctl_arg(a, tok);
        }
        if (val && !cJSON_AddStringToObject(root, tok, val)) {
            cJSON_Delete(root);
            return -RE_ENOMEM;
        }
    }
    *out = root;
    return 0;
}

static void print_code(const struct ctl_cmd *cmd, const cJSON *v)
{
    static const struct { const char *label, *field; } rows[] = {
        { "code", "code" }, { "hub", "hub" }, { "ca fingerprint", "ca_fingerprint" },
        { "expires", "expires|expires_at" }, { "role", "role" },
    };
    const cJSON *code = ctl_field(v, "code"), *hub = ctl_field(v, "hub"),
                *fp = ctl_field(v, "ca_fingerprint"), *command = ctl_field(v, "command");
    struct re_buf b;

    re_buf_init(&b, 64 * 1024);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const cJSON *f = ctl_field(v, rows[i].field);
        if (!f)
            continue;
        re_buf_reset(&b);
        if (ctl_cell(&b, f, CTL_COL_TIME | CTL_COL_FULL) == 0 && b.ptr)
            printf("%-16s%s\n", rows[i].label, b.ptr);
    }
    printf("\n%s\n  ", strncmp(cmd->words, "users", 5) == 0 ? "the person runs, once:"
                                                             : "run on the store's node, once:");
    if (cJSON_IsString(command)) {
        ctl_print_safe(stdout, command->valuestring);
    } else if (cJSON_IsString(code) && cJSON_IsString(hub) && cJSON_IsString(fp)) {
        printf("%s --hub ", strncmp(cmd->words, "users", 5) == 0 ? "resedgectl login"
                                                                  : "resedge-agent enroll");
        ctl_print_safe(stdout, hub->valuestring);
        fputs(" --code ", stdout);
        ctl_print_safe(stdout, code->valuestring);
        fputs(" --ca-fingerprint ", stdout);
        ctl_print_safe(stdout, fp->valuestring);
    }
    fputc('\n', stdout);
    re_buf_release(&b);
}

static int cmd_call(struct ctl *c, const struct ctl_cmd *cmd, const struct ctl_args *a,
                    const char *const *pos, size_t npos)
{
    struct re_buf path;
    cJSON *body = NULL, *v = NULL;
    int ret;

    re_buf_init(&path, 64 * 1024);
    if (expand(&path, cmd->tmpl, pos, npos, true) < 0 ||
        add_dry_run(&path, a) < 0 ||
        (cmd->body && body_from_spec(&body, cmd->body, a, pos, npos) < 0)) {
        ret = oom();
        goto out;
    }
    if (ctl_arg(a, "ttl")) {
        unsigned long long ms;
        if (re_parse_duration_ms(&ms, ctl_arg(a, "ttl")) < 0 || ms < 1000) {
            fprintf(stderr, "error: bad --ttl '%s': give a duration like 30m, 24h or 7d\n",
                    ctl_arg(a, "ttl"));
            ret = CTL_EUSAGE;
            goto out;
        }
    }
    if ((ret = ctl_call(c, cmd->method, path.ptr, body, NULL, &v)) != CTL_OK)
        goto out;
    if (c->format != CTL_FMT_TABLE) {
        ret = print_value(c, v);
    } else if (is_dry_run(a)) {
        fputs("dry run: nothing was changed\n", stderr);
        if (cJSON_IsObject(v))
            print_preview(v);
    } else if (strstr(cmd->words, "enroll-code") || strcmp(cmd->words, "users add") == 0) {
        print_code(cmd, v);
    } else if (cmd->done) {
        print_done(cmd->done, pos, npos);
    } else if (cmd->cols && v) {
        const cJSON *items = cJSON_IsArray(v) ? v : cJSON_GetObjectItemCaseSensitive(v, "items");
        if (cJSON_IsArray(items))
            ctl_print_table(stdout, items, cmd->cols);
        else
            ctl_print_object(stdout, v);
    } else {
        ret = print_value(c, v);
    }
out:
    cJSON_Delete(body);
    cJSON_Delete(v);
    re_buf_release(&path);
    return ret;
}

/* ---- special commands ---- */

static int cmd_import(struct ctl *c, const struct ctl_cmd *cmd, const struct ctl_args *a,
                      const char *const *pos, size_t npos)
{
    const char *file = pos[0];
    const char *dot = strrchr(file, '.');
    const char *type = NULL;
    struct re_buf text, path, resp;
    struct ctl_req req = { .method = "POST" };
    cJSON *v = NULL;
    int r, ret = CTL_EUSAGE;

    re_buf_init(&text, CTL_MAX_INPUT);
    re_buf_init(&path, 4096);
    re_buf_init(&resp, CTL_MAX_BODY);
    if (dot && strcmp(dot, ".json") == 0)
        type = "application/json";
    else if (dot && strcmp(dot, ".csv") == 0)
        type = "text/csv";
    if (!type) {
        fprintf(stderr, "error: cannot tell the format of '%s': name it FILE.json or FILE.csv\n", file);
        goto out;
    }
    if ((r = re_read_file(&text, file)) < 0) {
        fprintf(stderr, "error: cannot read '%s': %s%s\n", file, re_strerror(r),
                r == -RE_ETOOBIG ? " (limit 16 MiB: split the file)" : "");
        goto out;
    }
    if (re_buf_append_str(&path, "/api/v1/clusters:import") < 0 ||
        (ctl_flag(a, "create-groups") && ctl_query_add(&path, "create_groups", "true") < 0) ||
        add_dry_run(&path, a) < 0) {
        ret = oom();
        goto out;
    }
    req.path = path.ptr;
    req.content_type = type;
    req.body = text.ptr ? text.ptr : "";
    req.body_len = text.len;
    if ((ret = ctl_request(c, &req, NULL, &resp)) != CTL_OK)
        goto out;
    if (resp.len && re_json_parse(&v, re_buf_str(&resp), 64, NULL) < 0) {
        fputs("error: the hub's answer is not valid JSON\n", stderr);
        ret = CTL_ESERVER;
        goto out;
    }
    if (c->format != CTL_FMT_TABLE || is_dry_run(a)) {
        if (is_dry_run(a) && c->format == CTL_FMT_TABLE)
            fputs("dry run: nothing was changed\n", stderr);
        ret = print_value(c, v);
        goto out;
    }
    const cJSON *n = ctl_field(v, "created|imported|count");
    const cJSON *g = ctl_field(v, "groups_created");
    if (cJSON_IsNumber(n)) {
        printf("imported %lld clusters from '", (long long)n->valuedouble);
        ctl_print_safe(stdout, file);
        fputc('\'', stdout);
        if (cJSON_IsNumber(g) && g->valuedouble > 0)
            printf(" (%lld groups created)", (long long)g->valuedouble);
        fputc('\n', stdout);
    } else
        print_value(c, v);
out:
    cJSON_Delete(v);
    re_buf_release(&text);
    re_buf_release(&path);
    re_buf_release(&resp);
    return ret;
}

static int cmd_select(struct ctl *c, const struct ctl_cmd *cmd, const struct ctl_args *a,
                      const char *const *pos, size_t npos)
{
    struct re_buf base;
    cJSON *result = NULL, *names = NULL;
    int ret;

    re_buf_init(&base, 64 * 1024);
    if (re_buf_append_str(&base, "/api/v1/clusters") < 0 ||
        ctl_query_add(&base, "expression", pos[0]) < 0 ||
        ctl_query_add(&base, "limit", SELECT_PAGE) < 0) {
        ret = oom();
        goto out;
    }
    if ((ret = fetch_pages(c, base.ptr, NULL, true, &result)) != CTL_OK)
        goto out;
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(result, "items");
    if (!(names = cJSON_CreateArray())) {
        ret = oom();
        goto out;
    }
    for (const cJSON *it = items ? items->child : NULL; it; it = it->next) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(it, "name");
        if (cJSON_IsString(name))
            cJSON_AddItemToArray(names, cJSON_CreateString(name->valuestring));
    }
    if (c->format == CTL_FMT_JSON) {
        ctl_print_json(stdout, names);
    } else if (c->format == CTL_FMT_YAML) {
        ctl_print_yaml(stdout, names);
    } else {
        for (const cJSON *n = names->child; n; n = n->next) {
            ctl_print_safe(stdout, n->valuestring);
            fputc('\n', stdout);
        }
        int n = cJSON_GetArraySize(names);
        fflush(stdout);
        fprintf(stderr, "%d cluster%s selected\n", n, n == 1 ? "" : "s");
    }
out:
    cJSON_Delete(result);
    cJSON_Delete(names);
    re_buf_release(&base);
    return ret;
}

/* {"key": {"value": V, "source": S}} or {"key": V} as rows. */
static cJSON *rows_from_object(const cJSON *obj)
{
    cJSON *rows = cJSON_CreateArray();
    for (const cJSON *m = obj->child; rows && m; m = m->next) {
        cJSON *row = cJSON_CreateObject();
        if (!row)
            break;
        cJSON_AddStringToObject(row, "key", m->string ? m->string : "");
        if (cJSON_IsObject(m)) {
            for (const cJSON *f = m->child; f; f = f->next)
                if (f->string)
                    cJSON_AddItemToObject(row, f->string, cJSON_Duplicate(f, 1));
        } else {
            cJSON_AddItemToObject(row, "value", cJSON_Duplicate(m, 1));
        }
        cJSON_AddItemToArray(rows, row);
    }
    return rows;
}

/* TARGET is a group path (starts with '/') or a cluster name. */
static int config_path(struct re_buf *out, const char *target, const char *key)
{
    int r = re_buf_printf(out, "/api/v1/%s/", target[0] == '/' ? "groups" : "clusters");
    if (r == 0)
        r = ctl_escape(out, target);
    if (r == 0)
        r = re_buf_append_str(out, "/config");
    if (r == 0 && key && (r = re_buf_append(out, "/", 1)) == 0)
        r = ctl_escape(out, key);
    return r;
}

static int cmd_config(struct ctl *c, const struct ctl_cmd *cmd, const struct ctl_args *a,
                      const char *const *pos, size_t npos)
{
    struct re_buf path;
    cJSON *v = NULL, *rows = NULL;
    int ret;

    re_buf_init(&path, 64 * 1024);
    if (config_path(&path, pos[0], NULL) < 0) {
        ret = oom();
        goto out;
    }
    if ((ret = ctl_call(c, "GET", path.ptr, NULL, NULL, &v)) != CTL_OK)
        goto out;
    if (c->format != CTL_FMT_TABLE) {
        ret = print_value(c, v);
        goto out;
    }
    const cJSON *vals = cJSON_IsArray(v) ? v : ctl_field(v, "values|items|config|effective");
    if (cJSON_IsObject(vals))
        vals = rows = rows_from_object(vals);
    if (!cJSON_GetArraySize(vals))
        fputs("no configuration values\n", stderr);
    else
        ctl_print_table(stdout, vals, config_cols);
    const cJSON *conflicts = ctl_field(v, "conflicts");
    if (cJSON_GetArraySize(conflicts) > 0) {
        cJSON *crow = cJSON_IsObject(conflicts) ? rows_from_object(conflicts) : NULL;
        printf("\nCONFLICTS (groups of the same depth disagree; set the value on a deeper group "
               "or on the cluster):\n");
        ctl_print_table(stdout, crow ? crow : conflicts, conflict_cols);
        cJSON_Delete(crow);
    }
out:
    cJSON_Delete(rows);
    cJSON_Delete(v);
    re_buf_release(&path);
    return ret;
}

/* config set TARGET KEY VALUE / config unset TARGET KEY */
static int cmd_config_set(struct ctl *c, const struct ctl_cmd *cmd, const struct ctl_args *a,
                          const char *const *pos, size_t npos)
{
    bool set = npos == 3;
    struct re_buf path;
    cJSON *body = NULL, *v = NULL;
    int ret;

    re_buf_init(&path, 64 * 1024);
    if (config_path(&path, pos[0], pos[1]) < 0 ||
        add_dry_run(&path, a) < 0 ||
        (set && (!(body = cJSON_CreateObject()) ||
                 !cJSON_AddStringToObject(body, "value", pos[2])))) {
        ret = oom();
        goto out;
    }
    if ((ret = ctl_call(c, set ? "PUT" : "DELETE", path.ptr, body, NULL, &v)) != CTL_OK)
        goto out;
    if (c->format != CTL_FMT_TABLE) {
        ret = print_value(c, v);
        goto out;
    }
    if (is_dry_run(a)) {
        fputs("dry run: nothing was changed\n", stderr);
        fputs("would ", stdout);
    }
    printf("%s ", set ? "set" : "unset");
    ctl_print_safe(stdout, pos[1]);
    printf(" on %s '", pos[0][0] == '/' ? "group" : "cluster");
    ctl_print_safe(stdout, pos[0]);
    fputs("'\n", stdout);
    if (is_dry_run(a) && cJSON_IsObject(v))
        print_preview(v);
out:
    cJSON_Delete(body);
    cJSON_Delete(v);
    re_buf_release(&path);
    return ret;
}

static int cmd_files(struct ctl *c, const struct ctl_cmd *cmd, const struct ctl_args *a,
                     const char *const *pos, size_t npos)
{
    struct re_buf path, resp;
    struct ctl_req req = { .method = "GET" };
    cJSON *v = NULL;
    int ret;

    re_buf_init(&path, 64 * 1024);
    re_buf_init(&resp, CTL_MAX_BODY);
    if (expand(&path, "/api/v1/clusters/{1}/files", pos, npos, true) < 0 ||
        (npos > 1 && ctl_query_add(&path, "path", pos[1]) < 0) ||
        (ctl_arg(a, "rev") && ctl_query_add(&path, "rev", ctl_arg(a, "rev")) < 0)) {
        ret = oom();
        goto out;
    }
    req.path = path.ptr;
    if ((ret = ctl_request(c, &req, NULL, &resp)) != CTL_OK)
        goto out;
    if (!resp.len)
        goto out;
    if (re_json_parse(&v, re_buf_str(&resp), 64, NULL) < 0) {
        /* A file's content served as text. */
        ctl_print_safe(stdout, resp.ptr);
        goto out;
    }
    if (c->format != CTL_FMT_TABLE) {
        ret = print_value(c, v);
        goto out;
    }
    const cJSON *content = ctl_field(v, "content");
    const cJSON *entries = cJSON_IsArray(v) ? v : ctl_field(v, "items|files|entries");
    if (cJSON_IsString(content)) {
        ctl_print_safe(stdout, content->valuestring);
        size_t n = strlen(content->valuestring);
        if (n && content->valuestring[n - 1] != '\n')
            fputc('\n', stdout);
    } else if (cJSON_IsArray(entries)) {
        if (entries->child && cJSON_IsString(entries->child)) {
            for (const cJSON *e = entries->child; e; e = e->next)
                if (cJSON_IsString(e)) {
                    ctl_print_safe(stdout, e->valuestring);
                    fputc('\n', stdout);
                }
        } else {
            ctl_print_table(stdout, entries, NULL);
        }
    } else {
        ret = print_value(c, v);
    }
out:
    cJSON_Delete(v);
    re_buf_release(&path);
    re_buf_release(&resp);
    return ret;
}

/* ---- the table ---- */

#define LIST_OPTS "limit search group expression metadata orderby all next"
#define APP_LIST_OPTS LIST_OPTS " namespace"
/* Each kind's own field flags: --group only for clusters, --expression
 * for what an expression selects (explain.c lists the fields). */
#define CHANGE_OPTS "set set-file metadata file dry-run diff"
#define CLUSTER_CHANGE_OPTS CHANGE_OPTS " group"
#define SELECTING_CHANGE_OPTS CHANGE_OPTS " expression"

#define RESOURCE_CMDS(R, NOUN, ID, A_SING, LOPTS, COPTS)                                                   \
    { NOUN " list", "", 0, 0, LOPTS, NULL, "list " NOUN " (one page; --all for every page)", \
      cmd_list, &R, NULL, NULL, NULL, NULL, NULL, false },                                      \
    { NOUN " get", ID, 1, 1, "", NULL, "show " A_SING, cmd_get, &R, NULL, NULL, NULL, NULL,      \
      NULL, false },                                                                           \
    { NOUN " create", ID, 0, 1, COPTS, NULL, "create " A_SING, cmd_create, &R, NULL, NULL, \
      NULL, NULL, NULL, false },                                                               \
    { NOUN " update", ID, 1, 1, COPTS " if-match", NULL, "change " A_SING, cmd_update, &R, \
      NULL, NULL, NULL, NULL, NULL, false },                                                   \
    { NOUN " delete", ID, 1, 1, "cascade dry-run diff if-match", NULL, "delete " A_SING, cmd_delete, \
      &R, NULL, NULL, NULL, NULL, NULL, false }

const struct ctl_cmd ctl_cmds[] = {
    RESOURCE_CMDS(res_groups, "groups", "PATH", "a group (PATH like /stores/central/tx)", LIST_OPTS,
                  CHANGE_OPTS),
    RESOURCE_CMDS(res_clusters, "clusters", "NAME", "a cluster", LIST_OPTS " pinned",
                  CLUSTER_CHANGE_OPTS),
    { "clusters import", "FILE", 1, 1, "create-groups dry-run diff", NULL,
      "import clusters from FILE.json or FILE.csv (all or nothing; bad lines are listed). "
      "CSV columns: name, groups (a;b), metadata (k=v;k=v), metadata.KEY, description, timezone",
      cmd_import, &res_clusters, NULL, NULL, NULL, NULL, NULL, false },
    { "clusters enroll-code", "NAME", 1, 1, "ttl replace", NULL,
      "make a one-time code for a store's agent to enroll with (a store whose agent is online "
      "needs --replace)", cmd_call, &res_clusters, "POST",
      "/api/v1/clusters/{1}/enroll-code", "ttl replace?", NULL, NULL, false },
    { "clusters revoke", "NAME", 1, 1, "", NULL,
      "revoke the cluster's certificate: its agent is refused from now on", cmd_call,
      &res_clusters, "POST", "/api/v1/clusters/{1}/revoke", NULL,
      "revoked the certificate of cluster '{1}'; enroll it again with 'resedgectl clusters "
      "enroll-code {1}'", NULL, false },
    { "clusters status", "NAME", 1, 1, "", NULL,
      "show what the cluster's agent last reported: online, revisions, versions, labels",
      cmd_call, &res_clusters, "GET", "/api/v1/clusters/{1}/status", NULL, NULL, NULL, false },
    { "clusters history", "NAME", 1, 1, "limit all next", NULL,
      "list the commits of the cluster's GitOps branch", cmd_list, &res_history, NULL,
      "/api/v1/clusters/{1}/history", NULL, NULL, history_cols, false },
    { "clusters revert", "NAME", 1, 1, "to dry-run diff", "to",
      "restore the cluster's branch to --to REV (a commit or main~N) and pin it there", cmd_call, &res_clusters,
      "POST", "/api/v1/clusters/{1}/revert", "to",
      "cluster '{1}' reverted and pinned; release it with 'resedgectl clusters unpin {1}'", NULL,
      false },
    { "clusters unpin", "NAME", 1, 1, "", NULL,
      "release a reverted cluster so it follows the inventory again", cmd_call, &res_clusters,
      "POST", "/api/v1/clusters/{1}/unpin", NULL, "cluster '{1}' unpinned", NULL, false },
    { "clusters files", "NAME [PATH]", 1, 2, "rev", NULL,
      "list the cluster's rendered files, or show the file PATH (at --rev REV)", cmd_files, &res_clusters, NULL,
      NULL, NULL, NULL, NULL, false },
    RESOURCE_CMDS(res_namespaces, "namespaces", "NAME", "a namespace", LIST_OPTS, SELECTING_CHANGE_OPTS),
    RESOURCE_CMDS(res_apps, "apps", "NAME", "an application", APP_LIST_OPTS, CHANGE_OPTS),
    { "apps status", "APP", 1, 1, "", NULL,
      "how many clusters run each version of APP, and which lag", cmd_call, &res_apps, "GET",
      "/api/v1/applications/{1}/status", NULL, NULL, NULL, false },
    RESOURCE_CMDS(res_policies, "policies", "NAME", "a policy", LIST_OPTS, SELECTING_CHANGE_OPTS),
    { "explain", "KIND[.FIELD]", 1, 1, "", NULL,
      "what a kind's fields mean, their types and an example (group, cluster, namespace, "
      "application, policy)", ctl_cmd_explain, NULL, NULL, NULL, NULL, NULL, NULL, true },
    { "select", "EXPR", 1, 1, "", NULL,
      "print the clusters an expression selects now (e.g. '/g/stores/central and not /m/ring/prod')",
      cmd_select, &res_clusters, NULL, NULL, NULL, NULL, NULL, false },
    { "config", "CLUSTER|/GROUP", 1, 1, "", NULL,
      "show a cluster's effective configuration (where each value comes from, conflicts), "
      "or the values set on a group",
      cmd_config, &res_clusters, NULL, NULL, NULL, NULL, config_cols, false },
    { "config set", "CLUSTER|/GROUP KEY VALUE", 3, 3, "dry-run diff", NULL,
      "set a configuration value on a group (a path) or a cluster", cmd_config_set, NULL, NULL,
      NULL, NULL, NULL, NULL, false },
    { "config unset", "CLUSTER|/GROUP KEY", 2, 2, "dry-run diff", NULL,
      "remove a configuration value from a group or a cluster", cmd_config_set, NULL, NULL,
      NULL, NULL, NULL, NULL, false },
    { "audit", "", 0, 0, "entity actor limit all next", NULL,
      "show the audit log (who changed what, when)", cmd_list, &res_audit, NULL, NULL, NULL,
      NULL, NULL, false },
    { "users add", "NAME", 1, 1, "role ttl", "role",
      "add a person with a role and make a one-time code for 'resedgectl login'", cmd_call,
      NULL, "POST", "/api/v1/users", "name=$1 role ttl", NULL, NULL, false },
    { "users enroll-code", "NAME", 1, 1, "role ttl", NULL,
      "make a new one-time code for an existing person (e.g. a new laptop)", cmd_call, NULL,
      "POST", "/api/v1/users/{1}/enroll-code", "role ttl", NULL, NULL, false },
    { "users revoke", "NAME", 1, 1, "", NULL,
      "revoke a person's certificate: it is refused from now on", cmd_call, NULL, "POST",
      "/api/v1/users/{1}/revoke", NULL, "revoked the certificate of user '{1}'", NULL, false },
    { "login", "", 0, 0, "code ca-fingerprint force", "hub code ca-fingerprint",
      "get a certificate with a one-time code and write a profile (the key never leaves here; "
      "an existing profile is replaced only with --force)",
      ctl_cmd_login, NULL, NULL, NULL, NULL, NULL, NULL, true },
    { "profiles list", "", 0, 0, "", NULL,
      "list the named profiles (* the current one) and the hub each talks to",
      ctl_cmd_profiles, NULL, NULL, NULL, NULL, NULL, NULL, true },
    { "profiles use", "NAME", 1, 1, "", NULL,
      "make profile NAME the one commands use (--profile NAME picks one for a command)",
      ctl_cmd_profiles, NULL, NULL, NULL, NULL, NULL, NULL, true },
    { NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false },
};
