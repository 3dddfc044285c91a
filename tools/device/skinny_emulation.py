# Emulates SkinnyGemmKernel (engine/cuda/kernels.cu) on the CPU: its loads, the XOR swizzle, ldmatrix's
# and mma.m16n8k16's fragment layouts (as kernels.cu documents them), the partial tile and the
# cluster's rank-order sum, on integer data against a direct product (exact). Run after changing the
# kernel's index arithmetic: python3 tools/device/skinny_emulation.py (about a second).
import random, sys
kSkFeat, kSkKc, kSkStages, kSkThreads, kSkPStride = 128, 64, 3, 128, 132
def SkOffset(r, c): return r * 128 + ((c ^ (r & 7)) << 4)

def run(M, N, K, split, S, NT, accumulate):
    random.seed(M * 1000 + N + K)
    w = [[random.randint(-3, 3) for _ in range(K)] for _ in range(N)]
    rows = 2 * M if split else M
    x = [[random.randint(-3, 3) for _ in range(K)] for _ in range(rows)]
    ldo = N + 3
    base = [[random.randint(-5, 5) for _ in range(ldo)] for _ in range(M)]
    out = [r[:] for r in base]
    tiles = (N + kSkFeat - 1) // kSkFeat
    chunks_total = K // kSkKc
    assert chunks_total % S == 0
    per = chunks_total // S
    XRows = 8 * NT * (2 if split else 1)
    WBytes = kSkFeat * kSkKc * 2
    Stage = WBytes + XRows * kSkKc * 2
    for ty in range(tiles):
        parts = []
        for sp in range(S):
            smem = {}  # byte offset (even) -> value
            n0 = ty * kSkFeat
            k_begin = sp * per * kSkKc
            def load(st, c):
                wsb = st * Stage
                xsb = wsb + WBytes
                k0 = k_begin + c * kSkKc
                for tid in range(kSkThreads):
                    for i in range(kSkFeat * 8 // kSkThreads):
                        idx = tid + i * kSkThreads; r = idx >> 3; ch = idx & 7
                        n = min(n0 + r, N - 1)
                        for e in range(8):
                            smem[wsb + SkOffset(r, ch) + 2 * e] = w[n][k0 + ch * 8 + e]
                    idx = tid
                    while idx < XRows * 8:
                        r = idx >> 3; ch = idx & 7
                        half = 1 if (split and r >= 8 * NT) else 0
                        rr = min(r - half * 8 * NT, M - 1)
                        for e in range(8):
                            smem[xsb + SkOffset(r, ch) + 2 * e] = x[half * M + rr][k0 + ch * 8 + e]
                        idx += kSkThreads
            # acc[warp][lane][mt][j][4]
            acc = [[[[[0] * 4 for _ in range(NT)] for _ in range(2)] for _ in range(32)] for _ in range(4)]
            def ldmatrix(addr_of_lane):
                # addr_of_lane(lane) -> byte address; returns r[lane][j] = (lo, hi) pairs
                res = [[None] * 4 for _ in range(32)]
                for L in range(32):
                    g, t = L >> 2, L & 3
                    for j in range(4):
                        a = addr_of_lane(8 * j + g)
                        res[L][j] = (smem[a + 4 * t], smem[a + 4 * t + 2])
                return res
            def mma(accw, mt, j, a, b0i, b1i, b):
                # a[L][0..3], b[L][b0i], b[L][b1i] pairs
                A = [[0] * 16 for _ in range(16)]; B = [[0] * 8 for _ in range(16)]
                for L in range(32):
                    g, t = L >> 2, L & 3
                    A[g][2*t], A[g][2*t+1] = a[L][0]
                    A[g+8][2*t], A[g+8][2*t+1] = a[L][1]
                    A[g][2*t+8], A[g][2*t+9] = a[L][2]
                    A[g+8][2*t+8], A[g+8][2*t+9] = a[L][3]
                    B[2*t][g], B[2*t+1][g] = b[L][b0i]
                    B[2*t+8][g], B[2*t+9][g] = b[L][b1i]
                D = [[sum(A[i][k] * B[k][n] for k in range(16)) for n in range(8)] for i in range(16)]
                for L in range(32):
                    g, t = L >> 2, L & 3
                    d = accw[L][mt][j]
                    d[0] += D[g][2*t]; d[1] += D[g][2*t+1]; d[2] += D[g+8][2*t]; d[3] += D[g+8][2*t+1]
            for st in range(kSkStages - 1):
                if st < per: load(st, st)
            for c in range(per):
                if c + kSkStages - 1 < per: load((c + kSkStages - 1) % kSkStages, c + kSkStages - 1)
                wsb = (c % kSkStages) * Stage; xsb = wsb + WBytes
                for warp in range(4):
                    for ks in range(kSkKc // 16):
                        a = []
                        for mt in range(2):
                            def addr(L, mt=mt):
                                mat, mrow = L >> 3, L & 7
                                r = warp * 32 + mt * 16 + mrow + ((mat & 1) << 3)
                                return wsb + SkOffset(r, 2 * ks + (mat >> 1))
                            a.append(ldmatrix(addr))
                        if split:
                            for j in range(NT):
                                def addrb(L, j=j):
                                    mat, mrow = L >> 3, L & 7
                                    r = (8 * NT if mat >= 2 else 0) + 8 * j + mrow
                                    return xsb + SkOffset(r, 2 * ks + (mat & 1))
                                b = ldmatrix(addrb)
                                for mt in range(2):
                                    mma(acc[warp], mt, j, a[mt], 0, 1, b)
                                    mma(acc[warp], mt, j, a[mt], 2, 3, b)
                        else:
                            for j in range(0, NT, 2):
                                def addrb(L, j=j):
                                    mat, mrow = L >> 3, L & 7
                                    jj = j + (mat >> 1) if j + 1 < NT else j
                                    return xsb + SkOffset(8 * jj + mrow, 2 * ks + (mat & 1))
                                b = ldmatrix(addrb)
                                for mt in range(2):
                                    mma(acc[warp], mt, j, a[mt], 0, 1, b)
                                    if j + 1 < NT: mma(acc[warp], mt, j + 1, a[mt], 2, 3, b)
            parts.append(acc)
        # Push: row r of each CTA's partial into rank r % S's recv[(r // S) * S + src][f].
        recv = [dict() for _ in range(S)]
        for src in range(S):
            acc = parts[src]
            for warp in range(4):
                for L in range(32):
                    g, t = L >> 2, L & 3
                    for mt in range(2):
                        for j in range(NT):
                            for e in range(4):
                                r = 8 * j + 2 * t + (e & 1); f = warp * 32 + mt * 16 + g + (e >> 1) * 8
                                if r < M:
                                    key = ((r // S) * S + src) * kSkPStride + f
                                    assert key not in recv[r % S]
                                    assert ((r // S) * S + src) < 8 * NT + 8
                                    recv[r % S][key] = acc[warp][L][mt][j][e]
        writes = {}
        for sp in range(S):
            for tid in range(kSkThreads):
                n = ty * kSkFeat + tid
                if n >= N: continue
                r = sp
                while r < M:
                    base_i = (r // S) * S * kSkPStride + tid
                    s_ = sum(recv[sp][base_i + s2 * kSkPStride] for s2 in range(S))
                    key = (r, n); assert key not in writes; writes[key] = 1
                    out[r][n] = out[r][n] + s_ if accumulate else s_
                    r += S
    for m in range(M):
        for n in range(ldo):
            if n >= N:
                assert out[m][n] == base[m][n]; continue
            ref = sum(w[n][k] * (x[m][k] + (x[M + m][k] if split else 0)) for k in range(K))
            if accumulate: ref += base[m][n]
            assert out[m][n] == ref, (m, n, out[m][n], ref)
    return True

for (M, N, K, split, S, NT, acc) in [(3, 130, 128, True, 2, 1, False), (5, 200, 192, False, 3, 1, True),
                                      (9, 140, 64, True, 1, 2, True), (12, 129, 128, False, 1, 2, False),
                                      (20, 128, 64, True, 1, 4, False), (17, 128, 64, False, 1, 4, True),
                                      (64, 128, 64, True, 1, 8, False), (33, 128, 64, False, 1, 8, True),
                                      (64, 128, 512, True, 8, 8, True), (33, 130, 320, False, 5, 8, False),
                                      (17, 256, 384, True, 6, 4, True), (7, 64, 256, True, 4, 1, False)]:
    run(M, N, K, split, S, NT, acc); print("ok", M, N, K, split, S, NT, acc); sys.stdout.flush()
