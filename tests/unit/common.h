/* tests/unit/common.h: helpers shared by the cmocka tests: paths to test data and an assert that
 * prints joule's own error message. */
#ifndef JOULE_TEST_COMMON_H
#define JOULE_TEST_COMMON_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "joule/joule.h"

/* Fails the test with err's message when st is not JOULE_OK. */
#define assert_joule_ok(st, err)                                                                   \
    do {                                                                                           \
        joule_status st_ = (st);                                                                   \
        if (st_ != JOULE_OK)                                                                       \
            fail_msg("%s: %s", joule_status_name(st_), (err)->msg);                               \
    } while (0)

/* $JOULE_SOURCE_DIR/rel (or the compiled-in source dir) written to buf. */
const char *test_source_path(const char *rel, char *buf, size_t size);
/* $JOULE_TESTDATA_DIR/rel (default /usr/share/libonnx-testdata/data). */
const char *test_data_path(const char *rel, char *buf, size_t size);
/* A fresh temporary directory (mkdtemp) written to buf; removed by test_rmtree. */
const char *test_tmpdir(char *buf, size_t size);
void test_rmtree(const char *dir);
/* Reads a whole file; *len set; returns malloc'd bytes or NULL. */
void *test_read_file(const char *path, size_t *len);
int test_write_file(const char *path, const void *buf, size_t len);

#endif
