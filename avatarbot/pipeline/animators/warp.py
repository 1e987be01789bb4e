"""Vectorised piecewise-affine mesh warp: one triangle map per portrait, one cv2.remap per frame.

Backward mapping needs, for every output pixel, the source point it shows. The mesh moves a little
per frame, so instead of rasterising every moved triangle (a Python loop over ~340 triangles) we
rasterise the *source* triangles once per portrait into a label map and find each output pixel's
triangle by walking: start from the triangle found at the pixel itself in the source, map the pixel
back with that triangle's affine, read the label where it lands, repeat. Neighbouring triangles
agree on their shared edge, so stopping on either side of an edge gives the same point. The maps
are computed on a grid of every second pixel and upsampled (piecewise-affine maps are linear inside
each triangle, so bilinear upsampling is exact there), then one cv2.remap fills the region.

`soft_affine_warp` moves the head the same way: a rotation/scale/shift whose strength follows a
soft mask, as one coordinate map rather than a warped copy blended with the frame.
"""

from __future__ import annotations

import numpy as np

_ITERATIONS = 10  # label walks; most points settle in 1-2, squashed corners take longer
_STRIDE_K = 3.0  # step length of the damped walk in squashed triangles
STRIDE = 2  # maps are computed on every STRIDE-th pixel and upsampled
_OFFSET = (STRIDE - 1) / 2 - STRIDE  # local position of grid sample 0 (see _upsample)


def _grid(x0: int, y0: int, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Coarse sample positions (absolute pixel coordinates) for an ROI, padded by one sample on
    every side so that upsampling by `_upsample` is exact up to the ROI border."""
    cw, ch = -(-w // STRIDE) + 2, -(-h // STRIDE) + 2
    xs = np.arange(cw, dtype=np.float32) * STRIDE + _OFFSET + x0
    ys = np.arange(ch, dtype=np.float32) * STRIDE + _OFFSET + y0
    gx, gy = np.meshgrid(xs, ys)
    return gx, gy


def _upsample(coarse: np.ndarray, w: int, h: int) -> np.ndarray:
    """cv2.resize by an integer factor S maps output index j to input (j + 0.5) / S - 0.5, so input
    sample k lands on output j = S k + (S - 1) / 2; `_grid` puts sample k at local position
    j - S (one padding sample): crop S pixels to line the result up with the ROI."""
    import cv2

    ch, cw = coarse.shape
    full = cv2.resize(coarse, (cw * STRIDE, ch * STRIDE), interpolation=cv2.INTER_LINEAR)
    return full[STRIDE : STRIDE + h, STRIDE : STRIDE + w]


class TriangleMapWarper:
    """Warp an image so that mesh vertices move from `src` to `dst` (same triangles)."""

    def __init__(self, src: np.ndarray, triangles: np.ndarray, image_size: tuple[int, int]) -> None:
        import cv2

        self.src = np.asarray(src, dtype=np.float32)
        self.triangles = np.asarray(triangles, dtype=np.int32)
        self.width, self.height = image_size
        s_tri = self.src[self.triangles].astype(np.float64)  # (T, 3, 2)
        n = len(self.triangles)
        # Label map of the source mesh: -1 outside (index -1 picks the identity row of the tables).
        labels = np.full((self.height, self.width), -1, dtype=np.int16)
        e1, e2 = s_tri[:, 1] - s_tri[:, 0], s_tri[:, 2] - s_tri[:, 0]
        area = np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]) / 2
        for k in np.argsort(-area):  # large first, small ones win on shared edge pixels
            if area[k] > 0.05:
                pts = np.round(s_tri[k] * 16).astype(np.int32)
                cv2.fillConvexPoly(labels, pts, int(k), lineType=cv2.LINE_8, shift=4)
        self.labels = labels.ravel()
        # Source box of each triangle (+ an unbounded row for "outside"): clamps the last step.
        lo = np.vstack([s_tri.min(axis=1) - 0.5, [-1e9, -1e9]])
        hi = np.vstack([s_tri.max(axis=1) + 0.5, [1e9, 1e9]])
        self._box = np.concatenate([lo, hi], axis=1).astype(np.float32)  # (T+1, 4)
        # Source edge inverses: displacement inside a source triangle is linear in position.
        det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
        self._src_flat = np.abs(det) < 1e-6
        det = np.where(self._src_flat, 1.0, det)
        self._src_inv = (
            np.stack(
                [np.stack([e2[:, 1], -e2[:, 0]], -1), np.stack([-e1[:, 1], e1[:, 0]], -1)], axis=1
            )
            / det[:, None, None]
        )  # (T, 2, 2): rows give barycentric l1, l2 from (p - a)
        self._s_tri = s_tri
        self._src_det = np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
        self._src_parts = (e1[:, 0], e1[:, 1], e2[:, 0], e2[:, 1], s_tri[:, 0, 0], s_tri[:, 0, 1])
        self._src_inv_parts = tuple(
            np.ascontiguousarray(self._src_inv[:, i, j]) for i in (0, 1) for j in (0, 1)
        )
        self._n = n
        self._flat_ids = np.nonzero(area < 1.0)[0]
        # One coarse grid over the whole mesh, with each point's source triangle: a point whose
        # source triangle did not move shows itself (triangles never overlap), so per frame only
        # the points on moved triangles are walked.
        lo_xy = np.floor(self.src.min(axis=0)).astype(int) - 2
        hi_xy = np.ceil(self.src.max(axis=0)).astype(int) + 3
        self._gx, self._gy = _grid(int(lo_xy[0]), int(lo_xy[1]), *(hi_xy - lo_xy).tolist())
        self._origin = (int(lo_xy[0]), int(lo_xy[1]))
        self._label0 = self._label_at(self._gx.ravel(), self._gy.ravel()).reshape(self._gx.shape)

    def _coefficients(self, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(T+1, 10) per-triangle update q' = P r + N q + k, flattened as
        [P00, P01, N00, N01, k0, P10, P11, N10, N11, k1].

        A triangle with area in the output maps r straight back (P = its inverse affine, N = 0).
        One squashed flat in the output (a shut eyelid, pressed lips) has no inverse: there the
        step is the damped q' = r - D(q), D the displacement field over the source triangle, which
        walks the pixel out to the neighbour that really covers it. Also returns which triangles
        are squashed, (T+1,) bool."""
        # One contiguous (T,) array per component: far fewer, cheaper numpy calls than (T, 2, 2)
        # stacks (this runs once per frame for ~340 triangles).
        d = dst[self.triangles].astype(np.float64)  # (T, 3, 2)
        ax, ay = d[:, 0, 0].copy(), d[:, 0, 1].copy()
        e1x, e1y = d[:, 1, 0] - ax, d[:, 1, 1] - ay
        e2x, e2y = d[:, 2, 0] - ax, d[:, 2, 1] - ay
        det = e1x * e2y - e1y * e2x
        # Under a quarter pixel of area, or squeezed to under a quarter of its source area (a
        # closing eyelid): no usable inverse.
        flat = (np.abs(det) < 0.5) | (np.abs(det) < 0.25 * self._src_det)
        inv_det = 1.0 / np.where(flat, 1.0, det)
        i00, i01, i10, i11 = e2y * inv_det, -e2x * inv_det, -e1y * inv_det, e1x * inv_det
        f1x, f1y, f2x, f2y, sax, say = self._src_parts
        m00, m01 = f1x * i00 + f2x * i10, f1x * i01 + f2x * i11  # dst -> src, linear part
        m10, m11 = f1y * i00 + f2y * i10, f1y * i01 + f2y * i11
        zero = np.zeros_like(ax)
        exact = [m00, m01, zero, zero, sax - m00 * ax - m01 * ay,
                 m10, m11, zero, zero, say - m10 * ax - m11 * ay]  # fmt: skip
        # The damped step q' = r - D(q) for every triangle, D the displacement over the source
        # triangle: D(q) = disp_a + G @ inv_src @ (q - a), linear, L q + off.
        dax, day = ax - sax, ay - say
        g1x, g1y = e1x - f1x, e1y - f1y  # displacement differences along the edges
        g2x, g2y = e2x - f2x, e2y - f2y
        s00, s01, s10, s11 = self._src_inv_parts
        l00, l01 = g1x * s00 + g2x * s10, g1x * s01 + g2x * s11
        l10, l11 = g1y * s00 + g2y * s10, g1y * s01 + g2y * s11
        o0 = dax - l00 * sax - l01 * say
        o1 = day - l10 * sax - l11 * say
        sf = self._src_flat
        if sf.any():  # a flat source triangle: no gradient, its mean displacement
            for arr in (l00, l01, l10, l11):
                arr[sf] = 0.0
            mean = (d[sf] - self._s_tri[sf]).mean(axis=1)
            o0[sf], o1[sf] = mean[:, 0], mean[:, 1]
        one = np.ones_like(ax)
        damped = np.stack([one, zero, -l00, -l01, -o0, zero, one, -l10, -l11, -o1], axis=1)
        c = np.stack(exact, axis=1)
        # Inside a squashed triangle the damped step barely moves a point near the squashed
        # line (the map there is a translation); take longer strides: overshooting is harmless,
        # the next triangle's exact inverse brings the point back.
        if flat.any():
            fast = damped[flat] * _STRIDE_K
            fast[:, 2] += 1 - _STRIDE_K
            fast[:, 8] += 1 - _STRIDE_K
            c[flat] = fast
        identity = np.array([[1, 0, 0, 0, 0, 0, 1, 0, 0, 0]], dtype=np.float64)
        # last row: outside the mesh
        return np.concatenate([c, identity]).astype(np.float32), np.append(flat, False)

    def source_points(
        self,
        gx: np.ndarray,
        gy: np.ndarray,
        label0: np.ndarray,
        dst: np.ndarray,
        moving: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Source coordinates shown at the output grid points (gx, gy) (a block of `_grid`, with
        their source-mesh labels `label0`) for a mesh moved to `dst`; `moving`, (T+1,) bool: the
        triangles with a moved vertex (default: all)."""
        c, squashed = self._coefficients(np.asarray(dst, dtype=np.float32))
        rx, ry = gx.ravel(), gy.ravel()
        qx, qy = rx.copy(), ry.copy()
        label = label0.ravel().copy()
        if moving is None:
            moving = np.append(np.ones(self._n, dtype=bool), False)
        # Walk only the points that are not settled yet: a point whose label holds after an exact
        # step lies in that triangle, and its source point is final (a damped step in a squashed
        # triangle settles nothing).
        # Points on unmoved triangles show themselves (triangles never overlap): skip them.
        idx = np.nonzero(moving[label])[0]
        for _ in range(_ITERATIONS):
            if not idx.size:
                break
            nx, ny = self._step(c, label[idx], rx[idx], ry[idx], qx[idx], qy[idx])
            # a damped step that no longer moves the point has found its preimage in the
            # squashed triangle itself
            still = np.abs(nx - qx[idx]) + np.abs(ny - qy[idx]) < 0.05
            qx[idx], qy[idx] = nx, ny
            new = self._label_at(nx, ny)
            moved = (new != label[idx]) | (squashed[new] & ~still)
            label[idx] = new
            idx = idx[moved]
        flat = self._fill_flat_sources(gx, gy, dst, label)
        if flat.size:
            idx = np.union1d(idx, flat)
        # Points still swinging between triangles, and those in opened flat triangles, take their
        # last triangle's map, kept inside its source box (thin triangles extrapolate far; a flat
        # one is a sliver there).
        if idx.size:
            nx, ny = self._step(c, label[idx], rx[idx], ry[idx], qx[idx], qy[idx])
            box = self._box[label[idx]]
            qx[idx] = np.clip(nx, box[:, 0], box[:, 2])
            qy[idx] = np.clip(ny, box[:, 1], box[:, 3])
        return qx.reshape(gx.shape), qy.reshape(gx.shape)

    @staticmethod
    def _step(
        c: np.ndarray,
        label: np.ndarray,
        rx: np.ndarray,
        ry: np.ndarray,
        qx: np.ndarray,
        qy: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        k = c[label]
        return (
            k[:, 0] * rx + k[:, 1] * ry + k[:, 2] * qx + k[:, 3] * qy + k[:, 4],
            k[:, 5] * rx + k[:, 6] * ry + k[:, 7] * qx + k[:, 8] * qy + k[:, 9],
        )

    def _fill_flat_sources(
        self, gx: np.ndarray, gy: np.ndarray, dst: np.ndarray, label: np.ndarray
    ) -> np.ndarray:
        """Triangles flat in the source (the lip strip of a closed mouth) cover nothing in the
        label map, so the walk cannot find them when they open up: rasterise those few directly,
        on the coarse grid, and give their points that triangle's map."""
        import cv2

        none = np.zeros(0, dtype=np.intp)
        if not len(self._flat_ids):
            return none
        ox, oy = float(gx[0, 0]), float(gy[0, 0])
        tri = (dst[self.triangles[self._flat_ids]] - (ox, oy)) / STRIDE  # (F, 3, 2) coarse units
        e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
        open_ = np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]) > 0.1
        if not open_.any():
            return none
        grid = np.full(gx.shape, -1, dtype=np.int16)
        fixed = np.round(tri * 16).astype(np.int32)
        for k in np.nonzero(open_)[0]:
            cv2.fillConvexPoly(grid, fixed[k], int(self._flat_ids[k]), cv2.LINE_8, 4)
        hit = np.nonzero(grid.ravel() >= 0)[0]
        label[hit] = grid.ravel()[hit]
        return hit

    def _label_at(self, qx: np.ndarray, qy: np.ndarray) -> np.ndarray:
        ix = np.clip(np.rint(qx), 0, self.width - 1).astype(np.intp)
        iy = np.clip(np.rint(qy), 0, self.height - 1).astype(np.intp)
        return self.labels[iy * self.width + ix]

    def warp(self, image: np.ndarray, dst: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        import cv2

        out = image.copy() if out is None else out
        dst = np.asarray(dst, dtype=np.float32)
        moved = np.abs(dst - self.src).max(axis=1) > 0.02
        tri_moved = np.append(moved[self.triangles].any(axis=1), False)  # label -1: never
        active = tri_moved[self._label0]
        if not active.any():
            return out
        # The block of grid points on moved triangles, one sample of margin around it.
        rows = np.nonzero(active.any(axis=1))[0]
        cols = np.nonzero(active.any(axis=0))[0]
        r0, r1 = max(0, rows[0] - 1), min(active.shape[0], rows[-1] + 2)
        c0, c1 = max(0, cols[0] - 1), min(active.shape[1], cols[-1] + 2)
        block = (slice(r0, r1), slice(c0, c1))
        qx, qy = self.source_points(
            self._gx[block], self._gy[block], self._label0[block], dst, tri_moved
        )
        # sample k of the block sits at x0 + STRIDE * k + _OFFSET (as `_grid` lays them out)
        x0 = self._origin[0] + STRIDE * c0
        y0 = self._origin[1] + STRIDE * r0
        w, h = STRIDE * (c1 - c0 - 2), STRIDE * (r1 - r0 - 2)
        map_x, map_y = _upsample(qx, w, h), _upsample(qy, w, h)
        # clip the region to the image
        cx0, cy0 = max(0, -x0), max(0, -y0)
        cx1 = min(w, self.width - x0)
        cy1 = min(h, self.height - y0)
        if cx1 <= cx0 or cy1 <= cy0:
            return out
        out[y0 + cy0 : y0 + cy1, x0 + cx0 : x0 + cx1] = cv2.remap(
            image,
            map_x[cy0:cy1, cx0:cx1],
            map_y[cy0:cy1, cx0:cx1],
            interpolation=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        return out


class SoftAffineWarp:
    """Move a region by a 2x3 affine whose strength fades with a soft mask (the head on the neck)."""

    def __init__(self, mask: np.ndarray, box: tuple[int, int, int, int]) -> None:
        x0, y0, x1, y1 = box
        self.box = box
        self.gx, self.gy = _grid(x0, y0, x1 - x0, y1 - y0)
        # The mask at the coarse sample points (nearest pixel; the mask is smooth).
        h, w = mask.shape
        ix = np.clip(np.rint(self.gx), 0, w - 1).astype(np.intp)
        iy = np.clip(np.rint(self.gy), 0, h - 1).astype(np.intp)
        self.mask = mask[iy, ix].astype(np.float32)

    def warp(self, frame: np.ndarray, forward: np.ndarray) -> None:
        """In place: frame(p) <- frame(p + mask(p) * (forward^-1 p - p)) inside the box."""
        import cv2

        inv = cv2.invertAffineTransform(forward.astype(np.float64)).astype(np.float32)
        gx, gy, m = self.gx, self.gy, self.mask
        sx = gx + m * (inv[0, 0] * gx + inv[0, 1] * gy + inv[0, 2] - gx)
        sy = gy + m * (inv[1, 0] * gx + inv[1, 1] * gy + inv[1, 2] - gy)
        x0, y0, x1, y1 = self.box
        map_x = _upsample(sx, x1 - x0, y1 - y0)
        map_y = _upsample(sy, x1 - x0, y1 - y0)
        frame[y0:y1, x0:x1] = cv2.remap(
            frame, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        )
