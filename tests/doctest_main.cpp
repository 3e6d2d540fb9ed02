// The one place doctest's main() is compiled; every test executable links this object.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
