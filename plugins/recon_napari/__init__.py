"""napari plugin for recon (npe2). Its reader, writer, widgets and sample data are built in the plugin issue;
this package exists now so that the distribution's layout (``recon`` and ``recon_napari``) is fixed."""
