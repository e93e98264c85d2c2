package stage_test

import "flag"

var seedFlag = flag.Uint64("seed", 0, "metamorphic seed; 0 picks one from the clock")
