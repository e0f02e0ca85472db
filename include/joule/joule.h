/* joule/joule.h: the whole public API in one include. */
#ifndef JOULE_H
#define JOULE_H

#include "joule/accuracy.h"
#include "joule/cpu.h"
#include "joule/dataset.h"
#include "joule/dtype.h"
#include "joule/engine.h"
#include "joule/graph.h"
#include "joule/infer.h"
#include "joule/info.h"
#include "joule/onnx.h"
#include "joule/status.h"
#include "joule/tensor.h"

#define JOULE_VERSION "0.1.0"

#endif
