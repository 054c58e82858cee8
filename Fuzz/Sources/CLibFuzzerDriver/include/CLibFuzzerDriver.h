#ifndef CLIBFUZZERDRIVER_H
#define CLIBFUZZERDRIVER_H
#include <stddef.h>
#include <stdint.h>

// Provided by libFuzzer (linked by -sanitize=fuzzer): runs the fuzzing loop with our callback.
// Declared here because SwiftPM links executables with `--defsym main=<Target>_main`, so libFuzzer's
// own main() is never used; our <Target>_main forwards to this driver instead.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*UserCb)(const uint8_t *Data, size_t Size));

#endif
