"""Published camera-control models, their architectures as released, and their checkpoints' key maps.

``cameractrl``: CameraCtrl on SVD / SVD-XT (``model=cameractrl_svd|cameractrl_svdxt``); ``motionctrl``:
MotionCtrl's camera-motion module on SVD (``model=motionctrl_svd``); ``release``: reading a released file
without pickle and turning it into a vid3d checkpoint (``python -m vid3d.convert``).
"""
