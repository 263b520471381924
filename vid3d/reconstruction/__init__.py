"""3D Gaussians fitted to posed frames (generated, ground-truth or both) and rendered at any camera.

``gaussians.Gaussians`` holds the parameters (the 3DGS parameterisation: means, wxyz quaternions, log
scales, opacity logits, SH degree-0 colour); ``render_torch.render`` is a differentiable PyTorch renderer
of them for CPUs and tests, ``render_gsplat.render`` the same call on gsplat's CUDA rasteriser;
``fit.fit_gaussians`` optimises them against frames; ``ply`` reads and writes the .ply layout 3DGS viewers
read. Cameras follow vid3d's conventions: OpenCV camera-to-world c2w (x right, y down, z forward), pixel
intrinsics K_px with pixel (row i, column j) centred at (j + 0.5, i + 0.5).
"""
