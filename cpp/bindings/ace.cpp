#include "buffers.h"

namespace tasklens::bind {

void bind_ace(py::module_& m) {}

}  // namespace tasklens::bind
