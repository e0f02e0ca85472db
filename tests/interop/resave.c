/* tests/interop/resave.c: loads each model under a backend-test root and saves it through joule
 * into OUT_DIR/<suite>__<test>.onnx, so a checker outside C can compare original and saved files.
 * Usage: resave TESTDATA_ROOT OUT_DIR  (prints "resaved N models"; exit 1 on any failure) */
#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>

#include "joule/joule.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: resave TESTDATA_ROOT OUT_DIR\n");
        return 2;
    }
    const char *suites[] = {"node", "pytorch-converted", "pytorch-operator", "simple", "real"};
    int n = 0, failed = 0;
    for (size_t s = 0; s < sizeof suites / sizeof *suites; s++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", argv[1], suites[s]);
        DIR *d = opendir(dir);
        if (!d)
            continue;
        struct dirent *e;
        while ((e = readdir(d))) {
            char in[8192], out[8192];
            struct stat sb;
            snprintf(in, sizeof in, "%s/%s/model.onnx", dir, e->d_name);
            if (e->d_name[0] == '.' || stat(in, &sb) != 0)
                continue;
            snprintf(out, sizeof out, "%s/%s__%s.onnx", argv[2], suites[s], e->d_name);
            joule_error err;
            joule_model *m = NULL;
            if (joule_model_load(in, &m, &err) || joule_model_save(m, out, NULL, &err)) {
                fprintf(stderr, "resave: %s\n", err.msg);
                failed++;
            }
            joule_model_free(m);
            n++;
        }
        closedir(d);
    }
    printf("resaved %d models, %d failed\n", n - failed, failed);
    return failed ? 1 : 0;
}
