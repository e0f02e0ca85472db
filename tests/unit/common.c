/* tests/unit/common.c: file and path helpers for the cmocka tests. */
#include "common.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

const char *test_source_path(const char *rel, char *buf, size_t size)
{
    const char *root = getenv("JOULE_SOURCE_DIR");
    snprintf(buf, size, "%s/%s", root ? root : JOULE_SOURCE_DIR, rel);
    return buf;
}

const char *test_data_path(const char *rel, char *buf, size_t size)
{
    const char *root = getenv("JOULE_TESTDATA_DIR");
    snprintf(buf, size, "%s/%s", root ? root : JOULE_TESTDATA_DIR, rel);
    return buf;
}

const char *test_tmpdir(char *buf, size_t size)
{
    const char *base = getenv("TMPDIR");
    snprintf(buf, size, "%s/joule-test-XXXXXX", base ? base : "/tmp");
    return mkdtemp(buf);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void test_rmtree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void *test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf && n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf)
        *len = (size_t)(n > 0 ? n : 0);
    return buf;
}

int test_write_file(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(buf, 1, len, f);
    return (fclose(f) == 0 && w == len) ? 0 : -1;
}
