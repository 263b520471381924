"""Pure camera geometry. Conventions (stated once, used everywhere): OpenCV camera axes (x right,
y down, z forward); camera-to-world 4x4 poses; pixel intrinsics at the tensor's resolution, pixel
centres at (u + 0.5, v + 0.5). numpy in -> numpy out, torch in -> torch out."""

from .cameras import (
    K_norm_to_px,
    K_px_to_norm,
    c2w_to_w2c,
    camera_centers,
    crop_resize_K,
    intrinsics_matrix,
    invert_rigid,
    normalize_scale,
    opencv_to_opengl_c2w,
    opengl_to_opencv_c2w,
    project_points,
    relative_to_first,
    rescale_K,
    to_homogeneous,
    w2c_to_c2w,
)
from .epipolar import epipolar_lines, fundamental_matrix
from .plucker import pixel_rays, plucker_embedding
from .rotations import axis_angle_to_matrix, look_at_c2w, project_to_so3, rotation_angle_between

__all__ = [
    "K_norm_to_px",
    "K_px_to_norm",
    "axis_angle_to_matrix",
    "c2w_to_w2c",
    "camera_centers",
    "crop_resize_K",
    "epipolar_lines",
    "fundamental_matrix",
    "intrinsics_matrix",
    "invert_rigid",
    "look_at_c2w",
    "normalize_scale",
    "opencv_to_opengl_c2w",
    "opengl_to_opencv_c2w",
    "pixel_rays",
    "plucker_embedding",
    "project_points",
    "relative_to_first",
    "rescale_K",
    "project_to_so3",
    "rotation_angle_between",
    "to_homogeneous",
    "w2c_to_c2w",
]
