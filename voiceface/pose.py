"""Head-pose maths: MediaPipe's 4x4 facial transformation matrix to translation + quaternion,
sign continuity, Euler angles and slerp. Quaternions are (w, x, y, z), unit norm."""
from __future__ import annotations

import numpy as np


def nearest_rotation(matrix: np.ndarray) -> np.ndarray:
    """The rotation closest to a 3x3 `matrix` (which may carry scale or noise), via SVD. (3, 3)."""
    u, _, vt = np.linalg.svd(matrix)
    rotation = u @ vt
    if np.linalg.det(rotation) < 0:                # a reflection: flip the weakest axis
        u[:, -1] *= -1
        rotation = u @ vt
    return rotation


def rotation_to_quaternion(rotation: np.ndarray) -> np.ndarray:
    """3x3 rotation to a unit quaternion (w, x, y, z) with w >= 0.

    Shepperd's method: take the square root of whichever of 1 + trace and the three
    1 + 2*R_ii - trace is largest, so we never divide by a number near zero (the textbook
    w = sqrt(1 + trace) / 2 loses all precision near 180 degrees)."""
    r = rotation
    trace = r[0, 0] + r[1, 1] + r[2, 2]
    candidates = (trace, r[0, 0], r[1, 1], r[2, 2])
    k = int(np.argmax(candidates))
    if k == 0:
        s = 2.0 * np.sqrt(1.0 + trace)
        q = (0.25 * s, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s)
    elif k == 1:
        s = 2.0 * np.sqrt(1.0 + 2 * r[0, 0] - trace)
        q = ((r[2, 1] - r[1, 2]) / s, 0.25 * s, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s)
    elif k == 2:
        s = 2.0 * np.sqrt(1.0 + 2 * r[1, 1] - trace)
        q = ((r[0, 2] - r[2, 0]) / s, (r[0, 1] + r[1, 0]) / s, 0.25 * s, (r[1, 2] + r[2, 1]) / s)
    else:
        s = 2.0 * np.sqrt(1.0 + 2 * r[2, 2] - trace)
        q = ((r[1, 0] - r[0, 1]) / s, (r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, 0.25 * s)
    q = np.asarray(q)
    q /= np.linalg.norm(q)
    return q if q[0] >= 0 else -q


def quaternion_to_rotation(q: np.ndarray) -> np.ndarray:
    """Unit quaternion(s) (..., 4) as (w, x, y, z) to rotation matrices (..., 3, 3)."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def matrix_to_pose(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe's 4x4 facial transformation matrix to (translation (3,) in cm, quaternion (4,))."""
    matrix = np.asarray(matrix, dtype=np.float64)
    return matrix[:3, 3].copy(), rotation_to_quaternion(nearest_rotation(matrix[:3, :3]))


def make_sign_continuous(quaternions: np.ndarray) -> np.ndarray:
    """Flip quaternions so each has a non-negative dot product with the previous valid one
    (q and -q are the same rotation; interpolation and learning need one consistent sign).
    Rows that are NaN (frames without a face) are skipped and stay NaN. (N, 4) -> (N, 4)."""
    out = np.array(quaternions, dtype=np.float64, copy=True)
    previous = None
    for i, q in enumerate(out):
        if np.isnan(q).any():
            continue
        if previous is not None and np.dot(q, previous) < 0:
            out[i] = -q
        previous = out[i]
    return out


def quaternion_to_euler_degrees(q: np.ndarray) -> np.ndarray:
    """(..., 4) unit quaternions to (..., 3) angles in degrees: (pitch, yaw, roll) for
    R = Rz(roll) @ Ry(yaw) @ Rx(pitch) in MediaPipe's camera frame (x right, y up, z towards the
    camera): pitch nods about x, yaw turns about y, roll tilts about the view axis z."""
    r = quaternion_to_rotation(q)
    pitch = np.arctan2(r[..., 2, 1], r[..., 2, 2])
    yaw = np.arcsin(np.clip(-r[..., 2, 0], -1.0, 1.0))
    roll = np.arctan2(r[..., 1, 0], r[..., 0, 0])
    return np.degrees(np.stack([pitch, yaw, roll], axis=-1))


def slerp(q0: np.ndarray, q1: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    """Spherical linear interpolation from q0 to q1 (both (..., 4)) at fraction t (broadcast),
    along the shorter arc. Returns unit quaternions (..., 4)."""
    q0 = np.asarray(q0, dtype=np.float64)
    q1 = np.asarray(q1, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)[..., None]
    dot = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)                  # the shorter way round
    dot = np.abs(dot)
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    sin_theta = np.sin(theta)
    near = sin_theta < 1e-6                          # nearly equal: lerp is exact enough
    safe = np.where(near, 1.0, sin_theta)
    w0 = np.where(near, 1 - t, np.sin((1 - t) * theta) / safe)
    w1 = np.where(near, t, np.sin(t * theta) / safe)
    out = w0 * q0 + w1 * q1
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def quaternion_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b of (..., 4) quaternions (w, x, y, z): rotate by b, then by a."""
    w1, x1, y1, z1 = np.moveaxis(np.asarray(a, dtype=np.float64), -1, 0)
    w2, x2, y2, z2 = np.moveaxis(np.asarray(b, dtype=np.float64), -1, 0)
    return np.stack([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
                     w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
                     w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2], axis=-1)


def quaternion_conjugate(q: np.ndarray) -> np.ndarray:
    """The inverse rotation of unit quaternions (..., 4)."""
    return np.asarray(q, dtype=np.float64) * np.array([1.0, -1.0, -1.0, -1.0])


def mean_quaternion(quaternions: np.ndarray) -> np.ndarray:
    """The average rotation of (N, 4) unit quaternions (Markley et al. 2007): the eigenvector of
    the largest eigenvalue of sum(q q^T), which ignores each quaternion's sign. (4,), w >= 0."""
    q = np.asarray(quaternions, dtype=np.float64)
    _, vectors = np.linalg.eigh(q.T @ q)
    mean = vectors[:, -1]
    return mean if mean[0] >= 0 else -mean
