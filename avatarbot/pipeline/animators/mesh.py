"""Piecewise-affine image warping over a fixed triangle mesh.

Backward mapping: every output pixel inside a moved triangle takes its colour from the matching
point of the same triangle in the source image, so neighbouring triangles agree on their shared
edge and nothing tears. Only triangles with a moved vertex are rasterised and remapped; the rest
of the image is copied untouched.
"""

from __future__ import annotations

import numpy as np

_SHIFT = 4  # sub-pixel bits for cv2.fillConvexPoly
_ONE = 1 << _SHIFT


def face_mesh_triangles(points: np.ndarray | None = None) -> np.ndarray:
    """Triangles of mediapipe's 468-point face mesh, recovered from its tessellation edges.

    Three mutually connected vertices are not always a face: a 3-cycle around other vertices is
    not. With `points` (2D positions), such separating cycles are dropped because they would
    overlap the real faces inside them."""
    edges = np.array(sorted(_tesselation()))
    neighbours: dict[int, set[int]] = {}
    for a, b in edges:
        neighbours.setdefault(int(a), set()).add(int(b))
        neighbours.setdefault(int(b), set()).add(int(a))
    tris = set()
    for a, b in edges:
        for c in neighbours[int(a)] & neighbours[int(b)]:
            tris.add(tuple(sorted((int(a), int(b), c))))
    out = np.array(sorted(tris), dtype=np.int32)
    if points is not None:
        out = out[~_contains_other_vertex(out, np.asarray(points, dtype=np.float64)[:468])]
    return out


def _tesselation() -> frozenset[tuple[int, int]]:
    """mediapipe's FACEMESH_TESSELATION, read from its (pure Python) module file: importing it the
    normal way runs mediapipe/__init__, which pulls in matplotlib and costs ~3 s of CLI start-up."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("mediapipe is not installed", name="mediapipe")
    path = Path(next(iter(spec.submodule_search_locations)))
    path = path / "python" / "solutions" / "face_mesh_connections.py"
    mod_spec = importlib.util.spec_from_file_location("_avatarbot_face_mesh_connections", path)
    assert mod_spec is not None and mod_spec.loader is not None
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)
    return module.FACEMESH_TESSELATION  # type: ignore[no-any-return]


def _contains_other_vertex(tris: np.ndarray, pts: np.ndarray) -> np.ndarray:
    a, b, c = pts[tris[:, 0]], pts[tris[:, 1]], pts[tris[:, 2]]
    v0, v1 = b - a, c - a
    den = v0[:, 0] * v1[:, 1] - v0[:, 1] * v1[:, 0]
    den = np.where(np.abs(den) < 1e-9, 1e-9, den)
    rel = pts[None, :, :] - a[:, None, :]  # (T, N, 2)
    l1 = (rel[..., 0] * v1[:, None, 1] - rel[..., 1] * v1[:, None, 0]) / den[:, None]
    l2 = (v0[:, None, 0] * rel[..., 1] - v0[:, None, 1] * rel[..., 0]) / den[:, None]
    inside = (l1 > 0.02) & (l2 > 0.02) & (l1 + l2 < 0.98)
    inside[np.arange(len(tris))[:, None], tris] = False
    return inside.any(axis=1)


def strip_triangles(upper: tuple[int, ...], lower: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """Triangles filling the hole between two contours that share their end points (mouth, eyes)."""
    tris = []
    for i in range(len(upper) - 1):
        a, b = upper[i], upper[i + 1]
        c, d = lower[i], lower[i + 1]
        if a != c:
            tris.append((a, b, c))
        if b != d or a == c:
            tris.append((b, d, c))
    return [t for t in tris if len(set(t)) == 3]


def ring_triangles(
    points: np.ndarray, inner: list[int], anchors_from: int
) -> list[tuple[int, int, int]]:
    """Delaunay triangles between the face outline `inner` and the anchor points (index >= anchors_from),
    keeping only those outside the outline."""
    import cv2

    ids = np.array(list(inner) + list(range(anchors_from, len(points))), dtype=np.int32)
    simplices = _delaunay(points[ids])
    outline = points[inner].astype(np.float32).reshape(-1, 1, 2)
    keep = []
    for simplex in simplices:
        verts = ids[list(simplex)]
        if np.all(verts < anchors_from):
            centroid = points[verts].mean(axis=0)
            if cv2.pointPolygonTest(outline, (float(centroid[0]), float(centroid[1])), False) >= 0:
                continue  # inside the face: covered by the face mesh
        keep.append(tuple(int(v) for v in verts))
    return keep


def _delaunay(pts: np.ndarray) -> list[tuple[int, int, int]]:
    """Delaunay triangles as index triples, with OpenCV's Subdiv2D (scipy.spatial costs 0.5 s to import)."""
    import cv2

    lo = np.floor(pts.min(axis=0)) - 10
    hi = np.ceil(pts.max(axis=0)) + 10
    subdiv = cv2.Subdiv2D((int(lo[0]), int(lo[1]), int(hi[0] - lo[0]), int(hi[1] - lo[1])))
    index = {}
    for i, (x, y) in enumerate(pts):
        subdiv.insert((float(x), float(y)))
        index[(round(float(x), 2), round(float(y), 2))] = i
    out = []
    for t in subdiv.getTriangleList():
        key = [(round(float(t[k]), 2), round(float(t[k + 1]), 2)) for k in (0, 2, 4)]
        if all(
            k in index for k in key
        ):  # skips triangles touching Subdiv2D's virtual outer corners
            out.append(tuple(index[k] for k in key))
    return out


class MeshWarper:
    """Warp an image so that mesh vertices move from `src` to `dst` (same triangles).

    The exact reference (one rasterised triangle at a time, slow in Python): the animator uses
    warp.TriangleMapWarper, and tests compare the two."""

    def __init__(self, src: np.ndarray, triangles: np.ndarray, image_size: tuple[int, int]) -> None:
        self.src = np.asarray(src, dtype=np.float32)
        self.triangles = np.asarray(triangles, dtype=np.int32)
        self.width, self.height = image_size

    def warp(self, image: np.ndarray, dst: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        import cv2

        out = image.copy() if out is None else out
        dst = np.asarray(dst, dtype=np.float32)
        moved = np.abs(dst - self.src).max(axis=1) > 0.02
        tri_mask = moved[self.triangles].any(axis=1)
        if not tri_mask.any():
            return out
        tris = self.triangles[tri_mask]
        d_tri = dst[tris]
        # Collapsed triangles (a closed mouth, a shut eyelid) would map with huge gains: drop them, and
        # draw small before large so shared edge pixels take the better-conditioned map.
        e1, e2 = d_tri[:, 1] - d_tri[:, 0], d_tri[:, 2] - d_tri[:, 0]
        area = np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]) / 2
        order = np.argsort(area)
        order = order[area[order] > 0.25]
        tris, d_tri = tris[order], d_tri[order]
        s_tri = self.src[tris]  # (T, 3, 2)
        lo = np.floor(d_tri.reshape(-1, 2).min(axis=0)).astype(int) - 1
        hi = np.ceil(d_tri.reshape(-1, 2).max(axis=0)).astype(int) + 2
        x0, y0 = max(0, lo[0]), max(0, lo[1])
        x1, y1 = min(self.width, hi[0]), min(self.height, hi[1])
        if x1 <= x0 or y1 <= y0:
            return out

        # Rasterise triangle ids (1-based; 0 = untouched) into the ROI.
        ids = np.zeros((y1 - y0, x1 - x0), dtype=np.int16)
        fixed = np.round((d_tri - np.array([x0, y0], np.float32)) * _ONE).astype(np.int32)
        for k in range(len(tris)):
            cv2.fillConvexPoly(ids, fixed[k], k + 1, lineType=cv2.LINE_8, shift=_SHIFT)
        # Where a triangle collapsed (lips pressed together, a shut eyelid) its neighbours meet
        # along a line that rasterisation may leave uncovered; those pixels would show the source
        # (e.g. the open mouth of the portrait). Give them a neighbouring triangle's map.
        holes = ids == 0
        if holes.any():
            grown = cv2.dilate(ids, np.ones((3, 3), np.uint8))
            ids[holes] = grown[holes]

        affines = _affines_dst_to_src(d_tri, s_tri)  # (T, 2, 3)
        ys, xs = np.nonzero(ids)
        if len(xs) == 0:
            return out
        k = ids[ys, xs].astype(np.intp) - 1
        gx = xs.astype(np.float32) + x0
        gy = ys.astype(np.float32) + y0
        a = affines[k]
        map_x = np.tile(np.arange(x0, x1, dtype=np.float32), (y1 - y0, 1))
        map_y = np.repeat(np.arange(y0, y1, dtype=np.float32)[:, None], x1 - x0, axis=1)
        # Clamp to the source triangle's box: rasterised edge pixels lie a little outside the exact
        # triangle, and extrapolating a thin triangle's map there would fetch far-away colours.
        s_lo = s_tri.min(axis=1)[k] - 0.5
        s_hi = s_tri.max(axis=1)[k] + 0.5
        map_x[ys, xs] = np.clip(
            a[:, 0, 0] * gx + a[:, 0, 1] * gy + a[:, 0, 2], s_lo[:, 0], s_hi[:, 0]
        )
        map_y[ys, xs] = np.clip(
            a[:, 1, 0] * gx + a[:, 1, 1] * gy + a[:, 1, 2], s_lo[:, 1], s_hi[:, 1]
        )
        out[y0:y1, x0:x1] = cv2.remap(
            image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        return out


def _affines_dst_to_src(d_tri: np.ndarray, s_tri: np.ndarray) -> np.ndarray:
    """Per-triangle 2x3 affine mapping destination points to source points.

    Closed form (2x2 inverse of the edge matrix): batched np.linalg.inv is ~100x slower here."""
    d = d_tri.astype(np.float64)
    s = s_tri.astype(np.float64)
    e1, e2 = d[:, 1] - d[:, 0], d[:, 2] - d[:, 0]
    f1, f2 = s[:, 1] - s[:, 0], s[:, 2] - s[:, 0]
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    degenerate = np.abs(det) < 1e-6
    det = np.where(degenerate, 1.0, det)
    # inverse of [[e1x, e2x], [e1y, e2y]]
    i00, i01 = e2[:, 1] / det, -e2[:, 0] / det
    i10, i11 = -e1[:, 1] / det, e1[:, 0] / det
    m = np.empty((len(d), 2, 3), dtype=np.float64)
    m[:, 0, 0] = f1[:, 0] * i00 + f2[:, 0] * i10
    m[:, 0, 1] = f1[:, 0] * i01 + f2[:, 0] * i11
    m[:, 1, 0] = f1[:, 1] * i00 + f2[:, 1] * i10
    m[:, 1, 1] = f1[:, 1] * i01 + f2[:, 1] * i11
    m[:, 0, 2] = s[:, 0, 0] - m[:, 0, 0] * d[:, 0, 0] - m[:, 0, 1] * d[:, 0, 1]
    m[:, 1, 2] = s[:, 0, 1] - m[:, 1, 0] * d[:, 0, 0] - m[:, 1, 1] * d[:, 0, 1]
    m[degenerate] = np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float64)
    return m.astype(np.float32)
