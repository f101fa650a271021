// Linked with -static: greenrun must refuse it (the loader never runs, so
// LD_PRELOAD cannot apply).
#include <cstdio>

int main() {
    std::puts("static program ran");
    return 0;
}
