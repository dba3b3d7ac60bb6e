"""SemiSeg's Processing provider: the engine's jobs as algorithms for the toolbox, the graphical
modeler and ``qgis_process``. Each algorithm runs ``python -m engine ...`` as a child process through
``ui.engine_process``, exactly like the dock does."""
