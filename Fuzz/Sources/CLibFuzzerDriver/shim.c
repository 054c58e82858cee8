// Intentionally empty: the target exists to export CLibFuzzerDriver.h to Swift.
#include "CLibFuzzerDriver.h"
