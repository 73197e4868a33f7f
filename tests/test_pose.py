"""Pose maths: matrix to quaternion (robust near 180 degrees), sign continuity, Euler, slerp."""
import numpy as np
from scipy.spatial.transform import Rotation

from voiceface.pose import (make_sign_continuous, matrix_to_pose, quaternion_to_euler_degrees,
                            quaternion_to_rotation, rotation_to_quaternion, slerp)


def to_wxyz(rotation: Rotation) -> np.ndarray:
    x, y, z, w = rotation.as_quat()
    return np.array([w, x, y, z])


def test_rotation_to_quaternion_matches_scipy_including_near_180_degrees():
    rng = np.random.default_rng(0)
    rotations = list(Rotation.random(200, random_state=1))
    rotations += [Rotation.from_rotvec(np.pi * (1 - 1e-9) * v / np.linalg.norm(v)) for v in rng.normal(size=(20, 3))]
    for rotation in rotations:
        q = rotation_to_quaternion(rotation.as_matrix())
        expected = to_wxyz(rotation)
        assert min(np.abs(q - expected).max(), np.abs(q + expected).max()) < 1e-9
        assert np.allclose(quaternion_to_rotation(q), rotation.as_matrix(), atol=1e-9)


def test_matrix_with_scale_and_translation_gives_the_rotation():
    rotation = Rotation.from_euler("xyz", [10, -20, 5], degrees=True)
    matrix = np.eye(4)
    matrix[:3, :3] = 1.07 * rotation.as_matrix()             # MediaPipe's matrix may carry scale
    matrix[:3, 3] = [1.5, -2.0, -40.0]
    translation, q = matrix_to_pose(matrix)
    assert np.allclose(translation, [1.5, -2.0, -40.0])
    assert np.allclose(np.abs(np.dot(q, to_wxyz(rotation))), 1.0, atol=1e-9)


def test_sign_continuity_flips_and_skips_gaps():
    q = to_wxyz(Rotation.from_euler("z", 30, degrees=True))
    sequence = np.array([q, -q, [np.nan] * 4, -q, q])
    fixed = make_sign_continuous(sequence)
    assert np.isnan(fixed[2]).all()
    valid = fixed[[0, 1, 3, 4]]
    assert np.allclose(valid, q)


def test_euler_angles_of_known_rotations():
    for axis, index in (("x", 0), ("y", 1), ("z", 2)):
        angles = quaternion_to_euler_degrees(to_wxyz(Rotation.from_euler(axis, 25, degrees=True)))
        expected = np.zeros(3)
        expected[index] = 25
        assert np.allclose(angles, expected, atol=1e-9)


def test_slerp_halfway_between_two_known_rotations():
    a = to_wxyz(Rotation.from_euler("y", 10, degrees=True))
    b = to_wxyz(Rotation.from_euler("y", 70, degrees=True))
    middle = slerp(a, b, 0.5)
    assert np.allclose(np.abs(np.dot(middle, to_wxyz(Rotation.from_euler("y", 40, degrees=True)))), 1.0)
    # the shorter arc, even when the second is given with the opposite sign
    assert np.allclose(np.abs(np.dot(slerp(a, -b, 0.5), middle)), 1.0)
    assert np.allclose(slerp(a, b, 0.0), a) and np.allclose(np.abs(np.dot(slerp(a, b, 1.0), b)), 1.0)
