"""The SemiSeg Processing provider: ``semiseg:<algorithm>`` in the toolbox, the modeler and qgis_process."""

from __future__ import annotations

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .accuracy import AssessAlgorithm, SampleAlgorithm
from .base import ICON_PATH
from .evaluate import EvaluateAlgorithm
from .polygons import PolygonsAlgorithm
from .predict import PredictAlgorithm
from .pretrain import PretrainAlgorithm
from .train import TrainAlgorithm
from .train_and_segment import TrainAndSegmentAlgorithm

ALGORITHMS = (TrainAndSegmentAlgorithm, TrainAlgorithm, PredictAlgorithm, PolygonsAlgorithm,
              SampleAlgorithm, AssessAlgorithm, EvaluateAlgorithm, PretrainAlgorithm)


class SemiSegProvider(QgsProcessingProvider):
    """Holds one instance of each SemiSeg algorithm."""

    ID = "semiseg"

    def id(self) -> str:
        return self.ID

    def name(self) -> str:
        return "SemiSeg"

    def longName(self) -> str:
        return "SemiSeg: segment rasters from a few painted labels"

    def icon(self) -> QIcon:
        return QIcon(str(ICON_PATH))

    def loadAlgorithms(self) -> None:  # noqa: N802 (QGIS API)
        for algorithm in ALGORITHMS:
            self.addAlgorithm(algorithm())

    def supportedOutputRasterLayerExtensions(self) -> list[str]:  # noqa: N802 (QGIS API)
        return ["tif"]  # the engine writes GeoTIFF

    def supportedOutputVectorLayerExtensions(self) -> list[str]:  # noqa: N802 (QGIS API)
        return ["gpkg"]  # the engine writes polygons and samples as GeoPackages

    def defaultVectorFileExtension(self, hasGeometry: bool = True) -> str:  # noqa: ARG002, N802, N803
        return "gpkg"

    def supportsNonFileBasedOutput(self) -> bool:  # noqa: N802 (QGIS API)
        return False  # the engine writes files: no "save to a table of a database" in the dialogs
