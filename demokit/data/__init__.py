"""Data: the HDF5 demonstration format, its reader/writer and converters.

>>> from demokit.data import DatasetWriter, Episode, load_dataset
"""

from demokit.data.dataset import DemoDataset, load_dataset
from demokit.data.episode import Episode
from demokit.data.format import FORMAT_NAME, FORMAT_VERSION
from demokit.data.writer import DatasetWriter

__all__ = ["DatasetWriter", "DemoDataset", "Episode", "FORMAT_NAME", "FORMAT_VERSION", "load_dataset"]
