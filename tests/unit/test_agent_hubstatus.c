/* test_agent_hubstatus.c - the hub's side of check-ins: online/stale/offline
 * from the last check-in, and checkin_status_json over the cluster_status table. */
#include <stdio.h>
#include <string.h>
#include "../../hub/api/api_checkin.h"
#include "../../hub/inventory/db.h"
#include "error.h"
#include "testlib.h"

static void states(void)
{
    CHECK_EQ_STR(checkin_state(0, 60, 1000), "offline");
    CHECK_EQ_STR(checkin_state(1000, 60, 1000), "online");
    CHECK_EQ_STR(checkin_state(1000, 60, 1120), "online");    /* 2 intervals */
    CHECK_EQ_STR(checkin_state(1000, 60, 1121), "stale");
    CHECK_EQ_STR(checkin_state(1000, 60, 1600), "stale");     /* 10 intervals */
    CHECK_EQ_STR(checkin_state(1000, 60, 1601), "offline");
    CHECK_EQ_STR(checkin_state(1000, 1, 1003), "stale");
    CHECK_EQ_STR(checkin_state(1000, 0, 1100), "online");     /* default interval */
}

static void status_json(void)
{
    sqlite3 *db = NULL;
    char path[4096];
    snprintf(path, sizeof(path), "%s/hub.db", test_tmpdir());
    CHECK_EQ_INT(db_open(&db, path), 0);
    CHECK_EQ_INT(db_exec(db, "INSERT INTO clusters (id, name, created_at, created_by, updated_at,"
                             " updated_by) VALUES (1, 'store-1', 0, 'x', 0, 'x'),"
                             " (2, 'store-2', 0, 'x', 0, 'x')"), 0);
    CHECK_EQ_INT(db_exec(db, "INSERT INTO cluster_status (cluster_id, name, first_seen, last_seen,"
                             " reported_labels, applied_revision, interval_s, host) VALUES (1,"
                             " 'store-1', 100, 1000, '{\"region\":\"central\"}',"
                             " '0123456789abcdef0123456789abcdef01234567', 60, '{}')"), 0);
    cJSON *j = cJSON_CreateObject();
    CHECK_EQ_INT(checkin_status_json_at(db, "store-1", j, 1030), 0);
    CHECK_EQ_STR(cJSON_GetObjectItem(j, "status")->valuestring, "online");
    CHECK_EQ_STR(cJSON_GetObjectItem(j, "applied_revision")->valuestring,
                 "0123456789abcdef0123456789abcdef01234567");
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(j, "pulled_revision")));
    CHECK_EQ_STR(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "reported_labels"), "region")->valuestring,
                 "central");
    CHECK_EQ_STR(cJSON_GetObjectItem(j, "last_seen")->valuestring, "1970-01-01T00:16:40Z");
    cJSON_Delete(j);
    j = cJSON_CreateObject();
    CHECK_EQ_INT(checkin_status_json_at(db, "store-1", j, 1000 + 11 * 60), 0);
    CHECK_EQ_STR(cJSON_GetObjectItem(j, "status")->valuestring, "offline");
    cJSON_Delete(j);
    j = cJSON_CreateObject();
    CHECK_EQ_INT(checkin_status_json_at(db, "store-2", j, 1000), 0);
    CHECK_EQ_STR(cJSON_GetObjectItem(j, "status")->valuestring, "offline");
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(j, "never_seen")));
    cJSON_Delete(j);
    /* Deleting the cluster deletes its status. */
    CHECK_EQ_INT(db_exec(db, "DELETE FROM clusters WHERE id = 1"), 0);
    j = cJSON_CreateObject();
    CHECK_EQ_INT(checkin_status_json_at(db, "store-1", j, 1000), 0);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(j, "never_seen")));
    cJSON_Delete(j);
    db_close(db);
}

TEST_MAIN(T(states), T(status_json))
