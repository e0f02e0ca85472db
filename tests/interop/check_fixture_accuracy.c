/* tests/interop/check_fixture_accuracy.c: acceptance check for `joule eval`. Runs the real
 * command on every model tests/data/fixtures.json describes, over Fashion-MNIST's 10,000 test
 * images, and requires the exact number of correct images the fixture generator measured on the
 * exported graph (PyTorch). One thread: deterministic, and fast on CI's two cores.
 *
 * usage: check_fixture_accuracy JOULE_EXE SOURCE_DIR
 * Exit status: 0 all equal, 1 a count differs or a run failed, 77 (skipped) without
 * fixtures.json or the dataset. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "joule/dataset.h"

static char *read_all(FILE *f, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    size_t r;
    while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n < 2) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* 'text' quoted for sh -c. */
static void shell_quote(const char *s, char *out, size_t size)
{
    size_t o = 0;
    if (o + 1 < size)
        out[o++] = '\'';
    for (; *s && o + 5 < size; s++) {
        if (*s == '\'') {
            memcpy(out + o, "'\\''", 4);
            o += 4;
        } else {
            out[o++] = *s;
        }
    }
    if (o + 1 < size)
        out[o++] = '\'';
    out[o] = 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s JOULE_EXE SOURCE_DIR\n", argv[0]);
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/data/fixtures.json", argv[2]);
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("skip: %s not found\n", path);
        return 77;
    }
    if (access(JOULE_FASHION_MNIST_TEST, R_OK) != 0) {
        fclose(f);
        printf("skip: %s not found (Debian's dataset-fashion-mnist)\n", JOULE_FASHION_MNIST_TEST);
        return 77;
    }
    size_t len;
    char *text = read_all(f, &len);
    fclose(f);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    cJSON *models = cJSON_GetObjectItem(root, "models");
    if (!cJSON_IsObject(models)) {
        fprintf(stderr, "%s: no \"models\" object\n", path);
        cJSON_Delete(root);
        return 1;
    }
    int failed = 0, checked = 0;
    double total = 0;
    cJSON *entry;
    cJSON_ArrayForEach(entry, models)
    {
        const char *file = entry->string;
        cJSON *acc = cJSON_GetObjectItem(entry, "test_accuracy");
        cJSON *want = cJSON_GetObjectItem(acc, "correct");
        cJSON *images = cJSON_GetObjectItem(acc, "images");
        if (!file || !cJSON_IsNumber(want) || !cJSON_IsNumber(images)) {
            fprintf(stderr, "%s: entry '%s' has no test_accuracy.correct/images\n", path,
                    file ? file : "?");
            failed++;
            continue;
        }
        char model[4096], qexe[4200], qmodel[4200], cmd[9000];
        snprintf(model, sizeof model, "%s/tests/data/%s", argv[2], file);
        shell_quote(argv[1], qexe, sizeof qexe);
        shell_quote(model, qmodel, sizeof qmodel);
        snprintf(cmd, sizeof cmd, "%s eval %s --json --threads 1 --batch 64", qexe, qmodel);
        double t0 = now_s();
        FILE *p = popen(cmd, "r");
        char *out = p ? read_all(p, &len) : NULL;
        int rc = p ? pclose(p) : -1;
        if (rc > 0 && WIFEXITED(rc))
            rc = WEXITSTATUS(rc);
        double dt = now_s() - t0;
        total += dt;
        cJSON *res = out ? cJSON_Parse(out) : NULL;
        free(out);
        cJSON *top1 = cJSON_GetObjectItem(res, "top1");
        cJSON *got = cJSON_GetObjectItem(top1, "correct");
        cJSON *n = cJSON_GetObjectItem(res, "images");
        if (rc != 0 || !cJSON_IsNumber(got) || !cJSON_IsNumber(n)) {
            fprintf(stderr, "%s: `%s` failed (status %d)\n", file, cmd, rc);
            failed++;
        } else if (got->valuedouble != want->valuedouble || n->valuedouble != images->valuedouble) {
            fprintf(stderr, "%s: joule eval counts %.0f of %.0f correct, fixtures.json says %.0f "
                    "of %.0f\n", file, got->valuedouble, n->valuedouble, want->valuedouble,
                    images->valuedouble);
            failed++;
        } else {
            printf("%-22s %5.0f/%.0f correct (top-1 %.2f%%), as fixtures.json; %.2f s\n", file,
                   got->valuedouble, n->valuedouble, 100 * got->valuedouble / n->valuedouble, dt);
        }
        checked++;
        cJSON_Delete(res);
    }
    cJSON_Delete(root);
    printf("fixture accuracy: %d models checked, %d differ or failed, %.1f s\n", checked, failed,
           total);
    return failed || checked == 0 ? 1 : 0;
}
