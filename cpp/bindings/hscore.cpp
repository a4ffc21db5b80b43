#include "buffers.h"

namespace tasklens::bind {

void bind_hscore(py::module_& m) {}

}  // namespace tasklens::bind
