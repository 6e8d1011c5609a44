"""The class names packaged with densevl (``densevl/datasets/names/``), read as every names file
is (:func:`~densevl.models.text.read_class_names_file`). Needs no OpenMMLab."""
from pathlib import Path

from ..models.text.vocabulary import read_class_names_file

NAMES_DIR = Path(__file__).parent / 'names'


def read_dataset_names(file_name: str) -> tuple[str, ...]:
    """The classes of a packaged names file (one class a line, in label order); dataset classes
    use them as ``METAINFO['classes']`` and configs name them by the dataset type."""
    return tuple(read_class_names_file(NAMES_DIR / file_name))
