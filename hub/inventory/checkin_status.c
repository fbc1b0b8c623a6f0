/* checkin_status.c - reads back what agents reported (checkin_status.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "checkin_batch.h"
#include "checkin_status.h"
#include "clock.h"
#include "db.h"
#include "error.h"
#include "json.h"

const char *checkin_state(int64_t last_seen, int64_t interval_s, int64_t now)
{
    if (interval_s <= 0)
        interval_s = CHECKIN_INTERVAL_S;
    if (last_seen <= 0)
        return "offline";
    int64_t age = now - last_seen;
    if (age <= 2 * interval_s)
        return "online";
    if (age <= 10 * interval_s)
        return "stale";
    return "offline";
}

static cJSON *col_json(sqlite3_stmt *st, int i)
{
    cJSON *v = NULL;
    if (sqlite3_column_type(st, i) == SQLITE_TEXT) {
        const char *s = (const char *)sqlite3_column_text(st, i);
        re_json_parse(&v, re_str_c(s), 16, NULL);
    }
    return v ? v : cJSON_CreateNull();
}

static cJSON *col_text(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_TEXT)
        return cJSON_CreateString((const char *)sqlite3_column_text(st, i));
    return cJSON_CreateNull();
}

int checkin_status_json_at(sqlite3 *db, const char *cluster, cJSON *into, int64_t now)
{
    static const char sql[] =
        "SELECT last_seen, interval_s, pulled_revision, applied_revision, apply_result,"
        " reported_labels, agent_version, k8s_version, node_count, identity, host,"
        " kustomizations FROM cluster_status WHERE name = ?";
    sqlite3_stmt *st = NULL;
    int r;
    checkin_batch_flush();          /* on failure: the data as of the last flush */
    if (db_prepare_cached(db, sql, &st) < 0)
        return -RE_EDB;
    sqlite3_bind_text(st, 1, cluster, -1, SQLITE_STATIC);
    r = sqlite3_step(st);
    if (r == SQLITE_DONE) {
        cJSON_AddStringToObject(into, "status", "offline");
        cJSON_AddTrueToObject(into, "never_seen");
        cJSON_AddNullToObject(into, "last_seen");
        cJSON_AddNullToObject(into, "pulled_revision");
        cJSON_AddNullToObject(into, "applied_revision");
        cJSON_AddObjectToObject(into, "reported_labels");
        r = 0;
        goto out;
    }
    if (r != SQLITE_ROW) {
        r = db_err(r);
        goto out;
    }
    int64_t last = sqlite3_column_int64(st, 0), interval = sqlite3_column_int64(st, 1);
    char iso[40];
    re_time_iso(iso, sizeof(iso), last);
    cJSON_AddStringToObject(into, "status", checkin_state(last, interval, now));
    cJSON_AddStringToObject(into, "last_seen", iso);
    cJSON_AddItemToObject(into, "pulled_revision", col_text(st, 2));
    cJSON_AddItemToObject(into, "applied_revision", col_text(st, 3));
    cJSON_AddItemToObject(into, "apply_result", col_text(st, 4));
    cJSON_AddItemToObject(into, "reported_labels", col_json(st, 5));
    cJSON_AddItemToObject(into, "agent_version", col_text(st, 6));
    cJSON_AddItemToObject(into, "kubernetes_version", col_text(st, 7));
    if (sqlite3_column_type(st, 8) == SQLITE_INTEGER)
        cJSON_AddNumberToObject(into, "node_count", (double)sqlite3_column_int64(st, 8));
    else
        cJSON_AddNullToObject(into, "node_count");
    cJSON_AddItemToObject(into, "identity", col_text(st, 9));
    cJSON_AddItemToObject(into, "host", col_json(st, 10));
    cJSON_AddItemToObject(into, "kustomizations", col_json(st, 11));
    r = 0;
out:
    db_release(st);
    return r;
}

int checkin_status_json(sqlite3 *db, const char *cluster, cJSON *into)
{
    return checkin_status_json_at(db, cluster, into, re_time());
}

/* GET /api/v1/clusters/{name}/status: the same, for the agent itself, people
 * with read access to clusters, and scripts. */
