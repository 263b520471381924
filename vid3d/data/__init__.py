"""Data: RealEstate10K format (``vid3d.data.formats``), the embedded synthetic dataset
(``vid3d.data.synthetic``), loading/transforms and the datamodule. Import submodules directly;
this package imports nothing heavy."""
