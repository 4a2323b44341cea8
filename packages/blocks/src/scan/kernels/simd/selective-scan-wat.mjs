// The WebAssembly text of the SIMD selective scan (see selective-scan-simd.ts for why it exists).
// It is generated here rather than kept as a .wat file so that the vectorised exp, which must be
// inlined (V8 does not inline small wasm functions that take v128s), is written once.
// `pnpm build:scan-simd` compiles it into selective-scan-wasm-binary.ts; a test checks that the
// committed binary is this text's.
//
// Four states (lanes of an f32x4) are updated per instruction, so d_state must be a multiple of 4;
// the caller falls back to the JavaScript kernels otherwise. Every value is float32, as in the
// WGSL kernels; the float64 reference tests bound the error.

const splat = (value) => `(v128.const f32x4 ${value} ${value} ${value} ${value})`;

/**
 * Sets `target` to exp(`argument`) lane by lane, for arguments in [−80, 88] (smaller ones are taken
 * as −80: e^−80 ≈ 2e−35, which scans treat as the 0 it stands for): x = k·ln 2 + r with k an
 * integer and |r| ≤ ln 2 / 2 (Cody–Waite: ln 2 in a high part exact in k·ln2_hi and a low
 * part), e^r by its degree-7 Taylor polynomial (relative error < 1e−8, below float32's 6e−8)
 * and 2^k built in the exponent bits.
 */
function exp(target, argument) {
  let poly = splat(1 / 5040);
  for (const coefficient of [1 / 720, 1 / 120, 1 / 24, 1 / 6, 1 / 2, 1, 1]) {
    poly = `(f32x4.add (f32x4.mul ${poly} (local.get $er)) ${splat(coefficient)})`;
  }
  return `
    (local.set $ex (f32x4.min (f32x4.max ${argument} ${splat(-80)}) ${splat(88)}))
    (local.set $ek (f32x4.nearest (f32x4.mul (local.get $ex) ${splat(Math.LOG2E)})))
    (local.set $er (f32x4.sub
      (f32x4.sub (local.get $ex) (f32x4.mul (local.get $ek) ${splat(0.693359375)}))
      (f32x4.mul (local.get $ek) ${splat(-2.1219444e-4)})))
    (local.set ${target} (f32x4.mul ${poly}
      (i32x4.shl (i32x4.add (i32x4.trunc_sat_f32x4_s (local.get $ek)) (v128.const i32x4 127 127 127 127)) (i32.const 23))))`;
}

const EXP_LOCALS = '(local $ex v128) (local $ek v128) (local $er v128)';

const horizontalSum = (vector) => `(f32.add
  (f32.add (f32x4.extract_lane 0 (local.get ${vector})) (f32x4.extract_lane 1 (local.get ${vector})))
  (f32.add (f32x4.extract_lane 2 (local.get ${vector})) (f32x4.extract_lane 3 (local.get ${vector}))))`;

/** Arguments are byte offsets into the memory (arrays as in scan-math.mjs) and the dimensions. */
const forward = `
  ;; h_t = exp(Δ_t A) ⊙ h_{t−1} + Δ_t x_t B_t,  y_t = h_t · C_t, for every channel; h: d_inner·d_state floats of scratch.
  (func (export "forward")
    (param $x i32) (param $dt i32) (param $a i32) (param $b i32) (param $c i32) (param $y i32) (param $h i32)
    (param $batch i32) (param $length i32) (param $dInner i32) (param $dState i32)
    (local $bi i32) (local $t i32) (local $d i32) (local $n i32) (local $index i32) (local $bcRow i32)
    (local $aPtr i32) (local $hPtr i32) (local $rowBytes i32)
    (local $delta v128) (local $drive v128) (local $next v128) (local $out v128) (local $decay v128)
    ${EXP_LOCALS}
    (local.set $rowBytes (i32.shl (local.get $dState) (i32.const 2)))
    (local.set $bi (i32.const 0))
    (block $batchDone (loop $batchLoop
      (br_if $batchDone (i32.ge_u (local.get $bi) (local.get $batch)))
      (memory.fill (local.get $h) (i32.const 0) (i32.mul (local.get $dInner) (local.get $rowBytes)))
      (local.set $t (i32.const 0))
      (block $timeDone (loop $timeLoop
        (br_if $timeDone (i32.ge_u (local.get $t) (local.get $length)))
        (local.set $index (i32.mul (i32.add (i32.mul (local.get $bi) (local.get $length)) (local.get $t)) (local.get $dInner)))
        (local.set $bcRow (i32.mul (i32.add (i32.mul (local.get $bi) (local.get $length)) (local.get $t)) (local.get $rowBytes)))
        (local.set $aPtr (local.get $a))
        (local.set $hPtr (local.get $h))
        (local.set $d (i32.const 0))
        (block $channelDone (loop $channelLoop
          (br_if $channelDone (i32.ge_u (local.get $d) (local.get $dInner)))
          (local.set $delta (f32x4.splat (f32.load (i32.add (local.get $dt) (i32.shl (local.get $index) (i32.const 2))))))
          (local.set $drive (f32x4.mul (local.get $delta)
            (f32x4.splat (f32.load (i32.add (local.get $x) (i32.shl (local.get $index) (i32.const 2)))))))
          (local.set $out (v128.const i32x4 0 0 0 0))
          (local.set $n (i32.const 0))
          (block $stateDone (loop $stateLoop
            (br_if $stateDone (i32.ge_u (local.get $n) (local.get $rowBytes)))
            ${exp('$decay', '(f32x4.mul (local.get $delta) (v128.load (local.get $aPtr)))')}
            (local.set $next (f32x4.add
              (f32x4.mul (local.get $decay) (v128.load (local.get $hPtr)))
              (f32x4.mul (local.get $drive) (v128.load (i32.add (local.get $b) (i32.add (local.get $bcRow) (local.get $n)))))))
            (v128.store (local.get $hPtr) (local.get $next))
            (local.set $out (f32x4.add (local.get $out)
              (f32x4.mul (local.get $next) (v128.load (i32.add (local.get $c) (i32.add (local.get $bcRow) (local.get $n)))))))
            (local.set $aPtr (i32.add (local.get $aPtr) (i32.const 16)))
            (local.set $hPtr (i32.add (local.get $hPtr) (i32.const 16)))
            (local.set $n (i32.add (local.get $n) (i32.const 16)))
            (br $stateLoop)))
          (f32.store (i32.add (local.get $y) (i32.shl (local.get $index) (i32.const 2))) ${horizontalSum('$out')})
          (local.set $index (i32.add (local.get $index) (i32.const 1)))
          (local.set $d (i32.add (local.get $d) (i32.const 1)))
          (br $channelLoop)))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br $timeLoop)))
      (local.set $bi (i32.add (local.get $bi) (i32.const 1)))
      (br $batchLoop)))
  )`;

/**
 * The backward pass, as selectiveScanBackward in scan-math.mjs: for each block of up to
 * $blockWidth channels and each sequence, recompute the block's states and decays into the
 * scratch $states/$decays (length·blockWidth·d_state floats each), then walk back in time with
 * g_t = gy_t C_t + exp(Δ_{t+1} A) g_{t+1}. db and dc are accumulated in place (the caller zeroes
 * them); $zero is blockWidth·d_state zeroed floats (the state before t = 0); $gh and $gA are
 * blockWidth·d_state floats of scratch.
 */
const backward = `
  (func (export "backward")
    (param $x i32) (param $dt i32) (param $a i32) (param $b i32) (param $c i32) (param $dy i32)
    (param $dx i32) (param $ddt i32) (param $da i32) (param $db i32) (param $dc i32)
    (param $states i32) (param $decays i32) (param $zero i32) (param $gh i32) (param $gA i32)
    (param $batch i32) (param $length i32) (param $dInner i32) (param $dState i32) (param $blockWidth i32)
    (local $blockStart i32) (local $width i32) (local $bi i32) (local $t i32) (local $k i32) (local $n i32)
    (local $index i32) (local $bcRow i32) (local $rowBytes i32) (local $strideBytes i32)
    (local $aPtr i32) (local $statePtr i32) (local $decayPtr i32) (local $previousPtr i32) (local $carryPtr i32)
    (local $bPtr i32) (local $cPtr i32) (local $dbPtr i32) (local $dcPtr i32)
    (local $delta v128) (local $drive v128) (local $xValue v128) (local $gy v128) (local $decay v128)
    (local $g v128) (local $gb v128) (local $decayTerm v128) (local $gDelta v128) (local $gX v128) (local $aValue v128)
    ${EXP_LOCALS}
    (local.set $rowBytes (i32.shl (local.get $dState) (i32.const 2)))
    (local.set $blockStart (i32.const 0))
    (block $blocksDone (loop $blockLoop
      (br_if $blocksDone (i32.ge_u (local.get $blockStart) (local.get $dInner)))
      (local.set $width (select (local.get $blockWidth) (i32.sub (local.get $dInner) (local.get $blockStart))
        (i32.lt_u (local.get $blockWidth) (i32.sub (local.get $dInner) (local.get $blockStart)))))
      (local.set $strideBytes (i32.mul (local.get $width) (local.get $rowBytes)))
      (memory.fill (local.get $gA) (i32.const 0) (local.get $strideBytes))
      (local.set $bi (i32.const 0))
      (block $batchDone (loop $batchLoop
        (br_if $batchDone (i32.ge_u (local.get $bi) (local.get $batch)))
        ;; Recompute this block's states and decays for sequence bi.
        (local.set $t (i32.const 0))
        (block $recomputeDone (loop $recomputeLoop
          (br_if $recomputeDone (i32.ge_u (local.get $t) (local.get $length)))
          (local.set $index (i32.add (i32.mul (i32.add (i32.mul (local.get $bi) (local.get $length)) (local.get $t)) (local.get $dInner)) (local.get $blockStart)))
          (local.set $bcRow (i32.mul (i32.add (i32.mul (local.get $bi) (local.get $length)) (local.get $t)) (local.get $rowBytes)))
          (local.set $statePtr (i32.add (local.get $states) (i32.mul (local.get $t) (local.get $strideBytes))))
          (local.set $decayPtr (i32.add (local.get $decays) (i32.mul (local.get $t) (local.get $strideBytes))))
          (local.set $previousPtr (select (i32.sub (local.get $statePtr) (local.get $strideBytes)) (local.get $zero) (local.get $t)))
          (local.set $aPtr (i32.add (local.get $a) (i32.mul (local.get $blockStart) (local.get $rowBytes))))
          (local.set $k (i32.const 0))
          (block $channelDone (loop $channelLoop
            (br_if $channelDone (i32.ge_u (local.get $k) (local.get $width)))
            (local.set $delta (f32x4.splat (f32.load (i32.add (local.get $dt) (i32.shl (local.get $index) (i32.const 2))))))
            (local.set $drive (f32x4.mul (local.get $delta)
              (f32x4.splat (f32.load (i32.add (local.get $x) (i32.shl (local.get $index) (i32.const 2)))))))
            (local.set $n (i32.const 0))
            (block $stateDone (loop $stateLoop
              (br_if $stateDone (i32.ge_u (local.get $n) (local.get $rowBytes)))
              ${exp('$decay', '(f32x4.mul (local.get $delta) (v128.load (local.get $aPtr)))')}
              (v128.store (local.get $decayPtr) (local.get $decay))
              (v128.store (local.get $statePtr) (f32x4.add
                (f32x4.mul (local.get $decay) (v128.load (local.get $previousPtr)))
                (f32x4.mul (local.get $drive) (v128.load (i32.add (local.get $b) (i32.add (local.get $bcRow) (local.get $n)))))))
              (local.set $aPtr (i32.add (local.get $aPtr) (i32.const 16)))
              (local.set $statePtr (i32.add (local.get $statePtr) (i32.const 16)))
              (local.set $decayPtr (i32.add (local.get $decayPtr) (i32.const 16)))
              (local.set $previousPtr (i32.add (local.get $previousPtr) (i32.const 16)))
              (local.set $n (i32.add (local.get $n) (i32.const 16)))
              (br $stateLoop)))
            (local.set $index (i32.add (local.get $index) (i32.const 1)))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $channelLoop)))
          (local.set $t (i32.add (local.get $t) (i32.const 1)))
          (br $recomputeLoop)))
        ;; Walk back in time.
        (memory.fill (local.get $gh) (i32.const 0) (local.get $strideBytes))
        (local.set $t (local.get $length))
        (block $reverseDone (loop $reverseLoop
          (br_if $reverseDone (i32.eqz (local.get $t)))
          (local.set $t (i32.sub (local.get $t) (i32.const 1)))
          (local.set $index (i32.add (i32.mul (i32.add (i32.mul (local.get $bi) (local.get $length)) (local.get $t)) (local.get $dInner)) (local.get $blockStart)))
          (local.set $bcRow (i32.mul (i32.add (i32.mul (local.get $bi) (local.get $length)) (local.get $t)) (local.get $rowBytes)))
          (local.set $statePtr (i32.add (local.get $states) (i32.mul (local.get $t) (local.get $strideBytes))))
          (local.set $decayPtr (i32.add (local.get $decays) (i32.mul (local.get $t) (local.get $strideBytes))))
          (local.set $previousPtr (select (i32.sub (local.get $statePtr) (local.get $strideBytes)) (local.get $zero) (local.get $t)))
          (local.set $aPtr (i32.add (local.get $a) (i32.mul (local.get $blockStart) (local.get $rowBytes))))
          (local.set $carryPtr (local.get $gh))
          (local.set $k (i32.const 0))
          (block $channelDone (loop $channelLoop
            (br_if $channelDone (i32.ge_u (local.get $k) (local.get $width)))
            (local.set $delta (f32x4.splat (f32.load (i32.add (local.get $dt) (i32.shl (local.get $index) (i32.const 2))))))
            (local.set $xValue (f32x4.splat (f32.load (i32.add (local.get $x) (i32.shl (local.get $index) (i32.const 2))))))
            (local.set $gy (f32x4.splat (f32.load (i32.add (local.get $dy) (i32.shl (local.get $index) (i32.const 2))))))
            (local.set $drive (f32x4.mul (local.get $delta) (local.get $xValue)))
            (local.set $gDelta (v128.const i32x4 0 0 0 0))
            (local.set $gX (v128.const i32x4 0 0 0 0))
            (local.set $bPtr (i32.add (local.get $b) (local.get $bcRow)))
            (local.set $cPtr (i32.add (local.get $c) (local.get $bcRow)))
            (local.set $dbPtr (i32.add (local.get $db) (local.get $bcRow)))
            (local.set $dcPtr (i32.add (local.get $dc) (local.get $bcRow)))
            (local.set $n (i32.const 0))
            (block $stateDone (loop $stateLoop
              (br_if $stateDone (i32.ge_u (local.get $n) (local.get $rowBytes)))
              (local.set $decay (v128.load (local.get $decayPtr)))
              (local.set $g (f32x4.add (v128.load (local.get $carryPtr))
                (f32x4.mul (local.get $gy) (v128.load (local.get $cPtr)))))
              (v128.store (local.get $dcPtr) (f32x4.add (v128.load (local.get $dcPtr))
                (f32x4.mul (local.get $gy) (v128.load (local.get $statePtr)))))
              (v128.store (local.get $dbPtr) (f32x4.add (v128.load (local.get $dbPtr))
                (f32x4.mul (local.get $g) (local.get $drive))))
              (local.set $decayTerm (f32x4.mul (f32x4.mul (local.get $g) (local.get $decay)) (v128.load (local.get $previousPtr))))
              (local.set $gb (f32x4.mul (local.get $g) (v128.load (local.get $bPtr))))
              (local.set $gDelta (f32x4.add (local.get $gDelta) (f32x4.add
                (f32x4.mul (v128.load (local.get $aPtr)) (local.get $decayTerm))
                (f32x4.mul (local.get $gb) (local.get $xValue)))))
              (local.set $gX (f32x4.add (local.get $gX) (f32x4.mul (local.get $gb) (local.get $delta))))
              (v128.store (i32.add (local.get $gA) (i32.sub (local.get $carryPtr) (local.get $gh)))
                (f32x4.add (v128.load (i32.add (local.get $gA) (i32.sub (local.get $carryPtr) (local.get $gh))))
                  (f32x4.mul (local.get $delta) (local.get $decayTerm))))
              (v128.store (local.get $carryPtr) (f32x4.mul (local.get $g) (local.get $decay)))
              (local.set $aPtr (i32.add (local.get $aPtr) (i32.const 16)))
              (local.set $statePtr (i32.add (local.get $statePtr) (i32.const 16)))
              (local.set $decayPtr (i32.add (local.get $decayPtr) (i32.const 16)))
              (local.set $previousPtr (i32.add (local.get $previousPtr) (i32.const 16)))
              (local.set $carryPtr (i32.add (local.get $carryPtr) (i32.const 16)))
              (local.set $bPtr (i32.add (local.get $bPtr) (i32.const 16)))
              (local.set $cPtr (i32.add (local.get $cPtr) (i32.const 16)))
              (local.set $dbPtr (i32.add (local.get $dbPtr) (i32.const 16)))
              (local.set $dcPtr (i32.add (local.get $dcPtr) (i32.const 16)))
              (local.set $n (i32.add (local.get $n) (i32.const 16)))
              (br $stateLoop)))
            (f32.store (i32.add (local.get $ddt) (i32.shl (local.get $index) (i32.const 2))) ${horizontalSum('$gDelta')})
            (f32.store (i32.add (local.get $dx) (i32.shl (local.get $index) (i32.const 2))) ${horizontalSum('$gX')})
            (local.set $index (i32.add (local.get $index) (i32.const 1)))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $channelLoop)))
          (br $reverseLoop)))
        (local.set $bi (i32.add (local.get $bi) (i32.const 1)))
        (br $batchLoop)))
      (memory.copy (i32.add (local.get $da) (i32.mul (local.get $blockStart) (local.get $rowBytes)))
        (local.get $gA) (local.get $strideBytes))
      (local.set $blockStart (i32.add (local.get $blockStart) (local.get $blockWidth)))
      (br $blockLoop)))
  )`;

/** The module's text: one exported, growable memory and the two functions. */
export function selectiveScanWat() {
  return `(module
  (memory (export "memory") 1)
  ${forward}
  ${backward}
)
`;
}
