"""Base of the benchmarks whose raw label ids are folded to their classes as they load."""
from collections.abc import Sequence
from typing import Any, ClassVar

from mmseg.datasets import BaseSegDataset


class FixedLabelMapSegDataset(BaseSegDataset):
    """An mmseg dataset whose ``label_map`` is fixed by the benchmark (``LABEL_MAP``: raw id ->
    label, 255 for ignored ids) rather than derived from a change of classes.

    mmseg's loaders (``LoadAnnotations``, ``LoadUint16Annotations``) apply the map to every label
    map as it loads; raw ids the map does not name keep their value. ``reduce_zero_label`` must
    stay False and the classes cannot be changed through ``metainfo``.
    """

    LABEL_MAP: ClassVar[dict[int, int]] = {}

    def __init__(self, **kwargs: Any) -> None:
        if kwargs.pop('reduce_zero_label', False):
            raise ValueError(f'{type(self).__name__} folds its raw label ids itself; '
                             'reduce_zero_label must be False')
        super().__init__(reduce_zero_label=False, **kwargs)

    @classmethod
    def get_label_map(cls, new_classes: Sequence[str] | None = None) -> dict[int, int]:
        """``LABEL_MAP``, whatever the classes (a subset of them is refused)."""
        if new_classes is not None and list(new_classes) != list(cls.METAINFO['classes']):
            raise ValueError(f"{cls.__name__} scores its {len(cls.METAINFO['classes'])} "
                             'classes; metainfo classes cannot be changed')
        return dict(cls.LABEL_MAP)
