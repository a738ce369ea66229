// GLPK's C API (Debian: libglpk-dev). Only the compiler links it (LoadPlanner's exact method).
#include <glpk.h>
