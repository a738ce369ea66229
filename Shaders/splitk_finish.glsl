// splitk_finish.glsl — a product split over K finished by its own kernel: the workgroup that writes the last
// slice of an output tile's partial sums adds the tile's slices up and writes the outputs, so no separate
// splitk_reduce.comp step (and no barrier before it) is needed. Included by gemm_tiled.comp and gemm_cm.comp.
//
//   slice z of tile t writes P[z][M][ldY] (coherent) ─► memoryBarrierBuffer ─► atomicAdd(counter[t], 1)
//   the workgroup that saw S − 1 ─► counter[t] = 0 ─► memoryBarrierBuffer ─► Y = act(Σ_z P[z]) over the tile
//
// The sum runs over the slices in splitk_reduce.comp's order (SUM_SLICES, common.glsl), whichever workgroup
// finishes, so the outputs are the same bits as with the separate reduction and do not depend
// on the order the slices finished in. Each tile's counter is back to 0 once its last slice has finished: the
// lowering keeps one zero-initialized counter per tile in a resident arena tensor that every split product shares
// (steps run one after another).
//
// The includer declares, before including: binding 2 (the partial sums) as `coherent` (its writes must reach
// the other workgroups), and defines SPLITK_FINAL_BINDING and SPLITK_COUNTER_BINDING.

layout(std430, set = 0, binding = 2) coherent readonly buffer SplitKPartials { float splitkPartial[]; };
layout(std430, set = 0, binding = SPLITK_FINAL_BINDING) writeonly buffer SplitKFinal { float splitkY[]; };
layout(std430, set = 0, binding = SPLITK_COUNTER_BINDING) coherent buffer SplitKCounters { uint splitkCounter[]; };

shared bool splitkLastSlice;

// Called by every invocation of the workgroup (uniform control flow) once its partial sums are written: whether
// this workgroup is the last of the tile's `slices` to get here. Then every slice's partial sums are visible to it.
bool splitkArrive(uint tile, uint slices) {
    memoryBarrierBuffer();
    barrier();
    if (gl_LocalInvocationIndex == 0u) {
        const bool last = atomicAdd(splitkCounter[tile], 1u) == slices - 1u;
        if (last) {
            splitkCounter[tile] = 0u;  // every slice has arrived: nothing else reads it in this dispatch
        }
        splitkLastSlice = last;
    }
    barrier();
    const bool last = splitkLastSlice;
    if (last) {
        memoryBarrierBuffer();
    }
    return last;
}

// act(Σ over the slices of P[z][i]), P's slices `count` (= M · ldY) apart.
float splitkSum(uint i, uint count, uint slices, uint activation) {
    float sum;
    SUM_SLICES(splitkPartial, i, count, slices, sum)
    return activate(sum, activation);
}

// The last slice's workgroup writes the `rows` × `columns` outputs of its tile, whose first is (m0, col0) (col0
// within the piece; Y's row stride ldY, the piece's first column n0), for `invocations` invocations.
void splitkFinish(uint m0, uint col0, uint rows, uint columns, uint invocations, uint M, uint N, uint n0, uint ldY,
                  uint slices, uint activation) {
    const uint count = M * ldY;
    for (uint e = gl_LocalInvocationIndex; e < rows * columns; e += invocations) {
        const uint m = m0 + e / columns, col = col0 + e % columns;
        if (m < M && col < N) {
            const uint i = m * ldY + n0 + col;
            splitkY[i] = splitkSum(i, count, slices, activation);
        }
    }
}
