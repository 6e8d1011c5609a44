# OVSeg as published with Swin-B + CLIP ViT-L/14 (ov-seg configs/ovseg_swinB_vitL_bs32_120k.yaml):
# ovseg_r101c-clip-vit-b16.py's MaskFormer and ensemble on a Swin-B (embed 128, depths 2-2-18-2,
# heads 4-8-16-32, window 12, drop path 0.3, no absolute positions, pre-trained at 384 px on
# ImageNet-22k: the weights of swin_base_patch4_window12_384_22k, mmseg's converted copy, loaded
# by init_weights when training), the class head MLP 256 -> 1024 -> 768 in the space of CLIP
# ViT-L/14, masked crops above mask threshold 0.4, 640-px crops, test at short side 640 (long
# side at most 2560).
_base_ = ['./ovseg_r101c-clip-vit-b16.py']

model = dict(
    clip=dict(model_name='ViT-L-14-quickgelu'),
    mask_threshold=0.4,
    backbone=dict(
        _delete_=True,
        type='SwinTransformer',
        pretrain_img_size=384,
        embed_dims=128,
        depths=(2, 2, 18, 2),
        num_heads=(4, 8, 16, 32),
        window_size=12,
        drop_path_rate=0.3,
        use_abs_pos_embed=False,
        patch_norm=True,
        init_cfg=dict(type='Pretrained', checkpoint=(
            'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/'
            'swin_base_patch4_window12_384_22k_20220317-e5c09f74.pth'))),
    decode_head=dict(in_channels=[128, 256, 512, 1024]),
    data_preprocessor=dict(size=(640, 640)))
ovseg_test_pipeline = _base_.ovseg_test_pipeline
ovseg_test_pipeline[1].scale = (2560, 640)  # Resize
