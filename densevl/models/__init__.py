"""Models.

The plain-PyTorch cores (:mod:`.clip`, :mod:`.text`, :mod:`.segmentors`, :mod:`.denseclip`)
need only torch and open_clip, also on a GPU machine without mmcv. The OpenMMLab adapters are
registered by importing :mod:`.mm_adapters` (configs do it through ``custom_imports``).
"""
