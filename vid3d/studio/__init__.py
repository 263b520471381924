"""vid3d studio: a local web page over sampling, reconstruction and the camera benchmark.

``python -m vid3d.studio`` (or ``make studio``) serves it on http://127.0.0.1:7860 with the committed CPU
camera model (``assets/cpu_camera_control/``) by default. A thin layer: ``command`` (a request as
``sample.py`` overrides), ``paths`` (the keyframe table, the frustum plot), ``uploads`` (checked uploads),
``runner`` (the model and the jobs), ``app`` (the Gradio page; the only module that imports gradio).
"""
