/* tests/fuzz/fuzz_load.c: libFuzzer target for the ONNX loader. Any byte string must either load
 * (and then re-serialize and free cleanly) or fail with an error; never crash or leak. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "joule/joule.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    joule_error err;
    joule_model *m = NULL;
    if (joule_model_load_buffer(data, size, "fuzz", NULL, &m, &err) != JOULE_OK)
        return 0;
    void *buf = NULL;
    size_t len = 0;
    if (joule_model_serialize(m, &buf, &len, &err) == JOULE_OK)
        free(buf);
    joule_infer_shapes(m, NULL, 0, &err);
    joule_model_free(m);
    return 0;
}
