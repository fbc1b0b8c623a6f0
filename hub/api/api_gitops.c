/* api_gitops.c - the GitOps endpoints: a cluster's branch history, revert
 * (pins the cluster), unpin, rendered files, and the writer's status.
 *
 *   GET  /api/v1/clusters/{name}/history?limit=1..1000 (default 50)
 *        -> {"items": [{"commit", "time", "author", "message"}], "next": null}
 *   POST /api/v1/clusters/{name}/revert {"to": REV}[?dry_run=true[&diff=ANY]]
 *        -> {"cluster", "revision" (the new commit), "reverted_to", "pinned": true}
 *        a dry run with ?diff adds "diff": {"cluster", "patch"}: head -> REV
 *        REV: a commit id (>= 4 hex digits) or main~N in the cluster's history.
 *   POST /api/v1/clusters/{name}/unpin -> {"cluster", "pinned": false}; 409 when not pinned
 *   GET  /api/v1/clusters/{name}/files[?path=P][&rev=REV]
 *        -> {"cluster", "revision", "files": [path...]} or {"path", "content"}
 *   GET  /api/v1/gitops/status -> the writer's state (gitops__status_json)
 * Reads: admin, operator, viewer; an app team for the clusters its
 * namespaces reach; an agent for its own cluster; technicians none.
 * Writes: admin, operator. Revert and unpin are audited.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "conf.h"
#include "error.h"
#include "gitops/gitops.h"
#include "gitops/gitstore.h"
#include "http/routes.h"
#include "hub.h"
#include "inventory/audit.h"
#include "inventory/auth.h"
#include "inventory/db.h"
#include "json.h"
#include "oid.h"

/* Technicians see no rendered file: those hold every namespace's configuration. */
#define READ_ROLES (ROLE_READERS | ROLE_APPTEAM | ROLE_AGENT)
#define WRITE_ROLES (ROLE_ADMIN | ROLE_OPERATOR)
#define HISTORY_DEFAULT 50
#define HISTORY_MAX 1000

/* Decodes the cluster parameter, checks it exists and that an agent asks for
 * its own; answers the error itself and returns negative otherwise. */
static int cluster_param(struct http_exchange *x, char **name, int64_t *id)
{
    sqlite3_stmt *st = NULL;
    char *n = NULL;
    int r;
    if (x->n_params < 1 || http_percent_decode(&n, x->params[0], false) < 0) {
        http_response_error(&x->res, 400, "invalid", "name", "bad cluster name");
        return -RE_EINVAL;
    }
    if (!auth_own_cluster_ok(&x->req.peer, n)) {
        http_response_error(&x->res, 403, "forbidden", NULL, AUTH_OWN_CLUSTER_ONLY);
        r = -RE_EDENIED;
        goto out;
    }
    bool reaches = true;
    if ((r = auth_reaches_cluster(x->hub->db, &x->req.peer, n, &reaches)) < 0) {
        http_response_error(&x->res, 500, "database_error", NULL, "database error");
        goto out;
    }
    if (!reaches) {
        http_response_error(&x->res, 403, "forbidden", NULL, AUTH_NOT_REACHED, n);
        r = -RE_EDENIED;
        goto out;
    }
    if (sqlite3_prepare_v2(x->hub->db, "SELECT id FROM clusters WHERE name = ?", -1, &st, NULL) !=
        SQLITE_OK) {
        http_response_error(&x->res, 500, "database_error", NULL, "database error");
        r = -RE_EDB;
        goto out;
    }
    sqlite3_bind_text(st, 1, n, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_ROW) {
        http_response_error(&x->res, 404, "not_found", "name", "no cluster '%s'", n);
        r = -RE_ENOENT;
        goto out;
    }
    *id = sqlite3_column_int64(st, 0);
    *name = n;
    n = NULL;
    r = 0;
out:
    sqlite3_finalize(st);
    free(n);
    return r;
}

static struct gitstore *reader(struct http_exchange *x)
{
    struct gitstore *gs = gitops__reader(x->hub);
    if (!gs)
        http_response_error(&x->res, 503, "not_ready", NULL, "the GitOps writer is not running");
    return gs;
}

static int add_commit(const struct gitstore_commit_info *ci, void *ud)
{
    cJSON *items = ud, *o = cJSON_CreateObject();
    if (!o)
        return -RE_ENOMEM;
    cJSON_AddItemToArray(items, o);
    if (!cJSON_AddStringToObject(o, "commit", ci->id) ||
        !cJSON_AddNumberToObject(o, "time", (double)ci->time) ||
        !cJSON_AddStringToObject(o, "author", ci->author ? ci->author : "") ||
        !cJSON_AddStringToObject(o, "message", ci->message ? ci->message : ""))
        return -RE_ENOMEM;
    return 0;
}

static int h_history(struct http_exchange *x)
{
    struct gitstore *gs;
    char *name = NULL, *lim = NULL;
    unsigned long long limit = HISTORY_DEFAULT;
    int64_t id;
    cJSON *ans = NULL, *items;
    int r;
    if (cluster_param(x, &name, &id) < 0 || !(gs = reader(x)))
        goto out;
    if (http_query_get(&x->req, "limit", &lim) == 0 &&
        (re_parse_uint(&limit, lim, HISTORY_MAX) < 0 || limit == 0)) {
        http_response_error(&x->res, 400, "invalid", "limit", "limit must be 1-%d", HISTORY_MAX);
        goto out;
    }
    if (!(ans = cJSON_CreateObject()) || !(items = cJSON_AddArrayToObject(ans, "items"))) {
        http_response_from_err(&x->res, -RE_ENOMEM, NULL, NULL);
        goto out;
    }
    r = gitstore_log(gs, name, (size_t)limit, add_commit, items);
    if (r < 0 && r != -RE_ENOENT) {
        http_response_from_err(&x->res, r, NULL, "cannot read the cluster's history");
        goto out;
    }
    cJSON_AddNullToObject(ans, "next");
    http_response_json(&x->res, 200, ans);
out:
    cJSON_Delete(ans);
    free(name);
    free(lim);
    return 0;
}

static int h_files(struct http_exchange *x)
{
    struct gitstore *gs;
    struct render_tree *t = NULL;
    char *name = NULL, *path = NULL, *rev = NULL, *data = NULL;
    char hex[RE_OID_BUF];
    size_t len = 0;
    int64_t id;
    cJSON *ans = NULL, *files;
    int r;
    if (cluster_param(x, &name, &id) < 0 || !(gs = reader(x)))
        goto out;
    http_query_get(&x->req, "rev", &rev);
    http_query_get(&x->req, "path", &path);
    if ((r = gitstore_resolve(gs, name, rev, hex)) < 0) {
        http_response_error(&x->res, 404, "not_found", rev ? "rev" : NULL,
                            rev ? "no revision '%s' in this cluster's history"
                                : "cluster '%s' has no branch yet", rev ? rev : name);
        goto out;
    }
    if (!(ans = cJSON_CreateObject()))
        goto oom;
    if (path && *path) {
        if ((r = gitstore_file(&data, &len, gs, name, hex, path)) < 0) {
            http_response_error(&x->res, 404, "not_found", "path", "no file '%s'", path);
            goto out;
        }
        if (strlen(data) != len) {
            http_response_error(&x->res, 415, "unsupported", "path", "'%s' is binary", path);
            goto out;
        }
        if (!cJSON_AddStringToObject(ans, "path", path) ||
            !cJSON_AddStringToObject(ans, "revision", hex) ||
            !cJSON_AddStringToObject(ans, "content", data))
            goto oom;
    } else {
        if ((r = gitstore_read_tree(&t, gs, name, hex)) < 0) {
            http_response_from_err(&x->res, r, NULL, "cannot read the cluster's files");
            goto out;
        }
        if (!cJSON_AddStringToObject(ans, "cluster", name) ||
            !cJSON_AddStringToObject(ans, "revision", hex) ||
            !(files = cJSON_AddArrayToObject(ans, "files")))
            goto oom;
        for (size_t i = 0; i < t->n; i++)
            cJSON_AddItemToArray(files, cJSON_CreateString(t->v[i].path));
    }
    http_response_json(&x->res, 200, ans);
    goto out;
oom:
    http_response_from_err(&x->res, -RE_ENOMEM, NULL, NULL);
out:
    render_tree_free(t);
    cJSON_Delete(ans);
    free(name);
    free(path);
    free(rev);
    free(data);
    return 0;
}

static bool dry_run(struct http_exchange *x)
{
    char *v = NULL;
    bool yes = http_query_get(&x->req, "dry_run", &v) == 0 &&
               (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
    free(v);
    return yes;
}

static cJSON *rev_json(const char *key, const char *hex, bool pinned)
{
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddStringToObject(o, key, hex);
        cJSON_AddBoolToObject(o, "pinned", pinned);
    }
    return o;
}

/* Pins (rev != NULL) or unpins in one transaction with its audit row.
 * -RE_ENOENT when unpinning a cluster that is not pinned. */
static int set_pin(sqlite3 *db, int64_t id, const char *name, const char *actor, const char *rev,
                   const char *old_hex)
{
    sqlite3_stmt *st = NULL;
    cJSON *before = NULL, *after = NULL;
    int64_t now = (int64_t)time(NULL);
    int r;
    if ((r = db_begin(db)) < 0)
        return r;
    if (rev) {
        r = sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO gitops_pins (cluster_id, rev, "
                               "pinned_at, pinned_by) VALUES (?, ?, ?, ?)", -1, &st, NULL);
    } else {
        r = sqlite3_prepare_v2(db, "DELETE FROM gitops_pins WHERE cluster_id = ?", -1, &st, NULL);
    }
    if (r != SQLITE_OK) {
        r = -RE_EDB;
        goto out;
    }
    sqlite3_bind_int64(st, 1, id);
    if (rev) {
        sqlite3_bind_text(st, 2, rev, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now);
        sqlite3_bind_text(st, 4, actor, -1, SQLITE_STATIC);
    }
    if ((r = db_err(sqlite3_step(st))) < 0)
        goto out;
    if (!rev && sqlite3_changes(db) == 0) {
        r = -RE_ENOENT;
        goto out;
    }
    before = rev_json("revision", old_hex ? old_hex : "", !rev);
    after = rev ? rev_json("reverted_to", rev, true) : rev_json("revision", "", false);
    if ((r = audit_record(db, now, actor, rev ? "revert" : "unpin", "cluster", id, name, before,
                          after)) < 0)
        goto out;
    r = db_commit(db);
out:
    sqlite3_finalize(st);
    if (r < 0)
        db_rollback(db);
    cJSON_Delete(before);
    cJSON_Delete(after);
    return r;
}

static int h_revert(struct http_exchange *x)
{
    struct gitstore *gs;
    struct gitstore_batch *b = NULL;
    struct render_tree *t = NULL;
    struct re_buf err;
    char *name = NULL, actor[160], to_hex[RE_OID_BUF], head[RE_OID_BUF], new_hex[RE_OID_BUF] = "", msg[200];
    int64_t id;
    cJSON *body = NULL, *ans = NULL;
    const cJSON *to;
    bool changed = false;
    int r;
    re_buf_init(&err, 1024);
    if (cluster_param(x, &name, &id) < 0 || !(gs = reader(x)))
        goto out;
    if (re_json_parse(&body, x->req.body, 8, NULL) < 0 || !cJSON_IsObject(body) ||
        !cJSON_IsString(to = cJSON_GetObjectItemCaseSensitive(body, "to")) ||
        !*to->valuestring) {
        http_response_error(&x->res, 400, "invalid", "to",
                            "give the revision to restore as {\"to\": \"<commit>\"}");
        goto out;
    }
    if (gitstore_resolve(gs, name, to->valuestring, to_hex) < 0) {
        http_response_error(&x->res, 404, "not_found", "to",
                            "no revision '%s' in the history of cluster '%s'",
                            to->valuestring, name);
        goto out;
    }
    if (auth_identity(actor, sizeof(actor), &x->req.peer) < 0)
        snprintf(actor, sizeof(actor), "unknown");
    if (gitstore_head(gs, name, head) < 0 || gitstore_read_tree(&t, gs, name, to_hex) < 0) {
        http_response_error(&x->res, 500, "git_error", NULL, "cannot read cluster '%s'", name);
        goto out;
    }
    if (dry_run(x)) {
        char *want = NULL;
        bool diff = http_query_get(&x->req, "diff", &want) == 0;
        free(want);
        ans = rev_json("reverted_to", to_hex, true);
        cJSON_AddTrueToObject(ans, "dry_run");
        cJSON_AddStringToObject(ans, "cluster", name);
        cJSON_AddStringToObject(ans, "revision", head);
        if (diff) {
            struct render_tree *now = NULL;
            if (gitstore_read_tree(&now, gs, name, head) < 0) {
                http_response_error(&x->res, 500, "git_error", NULL, "cannot read cluster '%s'",
                                    name);
                goto out;
            }
            r = gitops__add_patch(ans, name, now, t);
            render_tree_free(now);
            if (r < 0) {
                http_response_from_err(&x->res, r, NULL, NULL);
                goto out;
            }
        }
        http_response_json(&x->res, 200, ans);
        goto out;
    }
    if ((r = set_pin(x->hub->db, id, name, actor, to_hex, head)) < 0) {
        http_response_from_err(&x->res, r, NULL, "cannot record the pin");
        goto out;
    }
    snprintf(msg, sizeof(msg), "revert to %.12s (pinned by %s)", to_hex, actor);
    for (int attempt = 0; attempt < 5; attempt++) {
        re_buf_reset(&err);
        if (gitstore_head(gs, name, head) < 0 ||
            (r = gitstore_batch_begin(&b, gs, &err)) < 0 ||
            (r = gitstore_batch_put(b, name, t, actor, msg, head, &changed, new_hex)) < 0) {
            gitstore_batch_abort(b);
            b = NULL;
            if (r == -RE_ECONFLICT)
                continue;
            break;
        }
        r = gitstore_batch_commit(b, &err);
        b = NULL;
        if (r != -RE_ECONFLICT)
            break;
    }
    if (r < 0) {
        /* the pin stands; the writer commits the pinned tree on its next pass */
        gitops__mark_cluster(x->hub, id, actor, msg);
        http_response_error(&x->res, 500, "git_error", NULL, "cannot commit the revert: %s",
                            err.len ? err.ptr : re_strerror(r));
        goto out;
    }
    if (!changed)
        gitstore_head(gs, name, new_hex);
    ans = rev_json("reverted_to", to_hex, true);
    cJSON_AddStringToObject(ans, "cluster", name);
    cJSON_AddStringToObject(ans, "revision", new_hex);
    http_response_json(&x->res, 200, ans);
out:
    render_tree_free(t);
    cJSON_Delete(body);
    cJSON_Delete(ans);
    re_buf_release(&err);
    free(name);
    return 0;
}

static int h_unpin(struct http_exchange *x)
{
    char *name = NULL, actor[160], head[RE_OID_BUF] = "", msg[200];
    int64_t id;
    cJSON *ans = NULL;
    int r;
    struct gitstore *gs;
    if (cluster_param(x, &name, &id) < 0 || !(gs = reader(x)))
        goto out;
    if (auth_identity(actor, sizeof(actor), &x->req.peer) < 0)
        snprintf(actor, sizeof(actor), "unknown");
    gitstore_head(gs, name, head);
    if ((r = set_pin(x->hub->db, id, name, actor, NULL, head)) < 0) {
        if (r == -RE_ENOENT)
            http_response_error(&x->res, 409, "not_pinned", "name", "cluster '%s' is not pinned",
                                name);
        else
            http_response_from_err(&x->res, r, NULL, "cannot remove the pin");
        goto out;
    }
    snprintf(msg, sizeof(msg), "cluster %s unpinned by %s", name, actor);
    gitops__mark_cluster(x->hub, id, actor, msg);
    ans = rev_json("cluster", name, false);
    http_response_json(&x->res, 200, ans);
out:
    cJSON_Delete(ans);
    free(name);
    return 0;
}

static int h_status(struct http_exchange *x)
{
    cJSON *o = gitops__status_json(x->hub);
    if (!o)
        return http_response_from_err(&x->res, -RE_ENOMEM, NULL, NULL);
    http_response_json(&x->res, 200, o);
    cJSON_Delete(o);
    return 0;
}

const struct route gitops_routes[] = {
    { "GET", "/api/v1/clusters/{name}/history", h_history, READ_ROLES },
    { "GET", "/api/v1/clusters/{name}/files", h_files, READ_ROLES },
    { "POST", "/api/v1/clusters/{name}/revert", h_revert, WRITE_ROLES },
    { "POST", "/api/v1/clusters/{name}/unpin", h_unpin, WRITE_ROLES },
    { "GET", "/api/v1/gitops/status", h_status, ROLE_READERS },
    { NULL, NULL, NULL, 0 },
};
