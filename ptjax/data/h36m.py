"""Human3.6M in VideoPose3D's npz layout, its cameras, and the S9/S11 evaluation protocol.

Files (VideoPose3D `DATASETS.md`, `data/prepare_data_h36m.py`; PoseAug/PoseTriplet use the same files):
* `data_3d_h36m.npz`: `positions_3d` = {subject: {action: (T, 32, 3)}} world coordinates (Z-up) in metres, 50 fps.
  The 17 joints of H36M-17 are the 32-joint indices in `H36M32_TO_17` (VideoPose3D `h36m_dataset.py` removes the
  other 15 static/duplicate joints). Files that already hold 17 joints are used as they are.
* `data_2d_h36m_<kind>.npz` (`gt`, `cpn_ft_h36m_dbb`, `hr`, ...): `positions_2d` = {subject: {action: [4 arrays
  (T, J, 2) in pixels, one per camera in the order of `CAMERA_INTRINSICS`]}} and `metadata` = {layout_name,
  num_joints, keypoints_symmetry}. J is 17 for layout 'h36m'; 16 for PoseAug's files (H36M-17 without the Nose,
  which gets a stand-in, see `ptjax.data.datasets`); layout 'coco' (VideoPose3D's Detectron COCO files) is
  mapped with `ptjax.skeleton.convert`. A 2D sequence may be longer than its mocap (some H36M videos have extra
  frames): it is cut to the mocap length, as VideoPose3D does.

Protocol (PoseTriplet `posegan_basementclass.py::fetch/evaluate_posenet`, VideoPose3D `run.py`): test subjects S9
and S11, all actions, the 4 cameras, every 2nd frame (`--downsample 2`, 50 -> 25 fps) of both the 2D input and the
3D ground truth; P1 = MPJPE of root-relative joints, P2 = P-MPJPE (similarity Procrustes per frame). Tables group
the actions by their first word ("Walking 1" and "Walking" are both "Walking"), as VideoPose3D does.
"""

from __future__ import annotations

import dataclasses
import os
import zipfile

import jax.numpy as jnp
import numpy as np

from ptjax import camera, geometry, skeleton
from ptjax.data.datasets import EvalSequence, to_h36m17

FPS = 50.0
DOWNSAMPLE = 2
TRAIN_SUBJECTS: tuple[str, ...] = ("S1", "S5", "S6", "S7", "S8")
TEST_SUBJECTS: tuple[str, ...] = ("S9", "S11")

# 32-joint H36M mocap -> H36M-17: keep these (VideoPose3D `h36m_dataset.py` removes
# [4, 5, 9, 10, 11, 16, 20, 21, 22, 23, 24, 28, 29, 30, 31] and rewires the shoulders to the thorax).
H36M32_TO_17: tuple[int, ...] = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)

# Camera calibration of Human3.6M as published in VideoPose3D `common/h36m_dataset.py`
# (`h36m_cameras_intrinsic_params`, `h36m_cameras_extrinsic_params`), which took them from the dataset's own
# calibration. Intrinsics: pixels. Extrinsics: orientation quaternion (w, x, y, z) rotating camera-frame vectors into
# the world, camera centre in the world in millimetres.
CAMERA_INTRINSICS: tuple[dict, ...] = (
    dict(id="54138969", center=(512.54150390625, 515.4514770507812),
         focal_length=(1145.0494384765625, 1143.7811279296875),
         radial_distortion=(-0.20709891617298126, 0.24777518212795258, -0.0030751503072679043),
         tangential_distortion=(-0.0009756988729350269, -0.00142447161488235), res_w=1000, res_h=1002),
    dict(id="55011271", center=(508.8486328125, 508.0649108886719),
         focal_length=(1149.6756591796875, 1147.5916748046875),
         radial_distortion=(-0.1942136287689209, 0.2404085397720337, 0.006819975562393665),
         tangential_distortion=(-0.0016190266469493508, -0.0027408944442868233), res_w=1000, res_h=1000),
    dict(id="58860488", center=(519.8158569335938, 501.40264892578125),
         focal_length=(1149.1407470703125, 1148.7989501953125),
         radial_distortion=(-0.2083381861448288, 0.25548800826072693, -0.0024604974314570427),
         tangential_distortion=(0.0014843869721516967, -0.0007599993259645998), res_w=1000, res_h=1000),
    dict(id="60457274", center=(514.9682006835938, 501.88201904296875),
         focal_length=(1145.5113525390625, 1144.77392578125),
         radial_distortion=(-0.198384091258049, 0.21832367777824402, -0.008947807364165783),
         tangential_distortion=(-0.0005872055771760643, -0.0018133620033040643), res_w=1000, res_h=1002),
)

CAMERA_EXTRINSICS: dict[str, tuple[tuple[tuple[float, ...], tuple[float, ...]], ...]] = {
    # subject: 4 x (orientation (w, x, y, z), translation (mm))
    "S1": (
        ((0.1407056450843811, -0.1500701755285263, -0.755240797996521, 0.6223280429840088),
         (1841.1070556640625, 4955.28466796875, 1563.4454345703125)),
        ((0.6157187819480896, -0.764836311340332, -0.14833825826644897, 0.11794740706682205),
         (1761.278564453125, -5078.0068359375, 1606.2650146484375)),
        ((0.14651472866535187, -0.14647851884365082, 0.7653023600578308, -0.6094175577163696),
         (-1846.7777099609375, 5215.04638671875, 1491.972412109375)),
        ((0.5834008455276489, -0.7853162288665771, 0.14548823237419128, -0.14749594032764435),
         (-1794.7896728515625, -3722.698974609375, 1574.8927001953125)),
    ),
    "S5": (
        ((0.1467377245426178, -0.162370964884758, -0.7551892995834351, 0.6178938746452332),
         (2097.3916015625, 4880.94482421875, 1605.732421875)),
        ((0.6159758567810059, -0.7626792192459106, -0.15728192031383514, 0.1189815029501915),
         (2031.7008056640625, -5167.93310546875, 1612.923095703125)),
        ((0.14291371405124664, -0.12907841801643372, 0.7678384780883789, -0.6110143065452576),
         (-1620.5948486328125, 5171.65869140625, 1496.43701171875)),
        ((0.5920479893684387, -0.7814217805862427, 0.1274748593568802, -0.15036417543888092),
         (-1637.1737060546875, -3867.3173828125, 1547.033203125)),
    ),
    "S6": (
        ((0.1337897777557373, -0.15692396461963654, -0.7571090459823608, 0.6198879480361938),
         (1935.4517822265625, 4950.24560546875, 1618.0838623046875)),
        ((0.6147197484970093, -0.7628812789916992, -0.16174767911434174, 0.11819244921207428),
         (1969.803955078125, -5128.73876953125, 1632.77880859375)),
        ((0.1529948115348816, -0.13529130816459656, 0.7646096348762512, -0.6112781167030334),
         (-1769.596435546875, 5185.361328125, 1476.993408203125)),
        ((0.5916101336479187, -0.7804774045944214, 0.12832270562648773, -0.1561593860387802),
         (-1721.668701171875, -3884.13134765625, 1540.4879150390625)),
    ),
    "S7": (
        ((0.1435241848230362, -0.1631336808204651, -0.7548328638076782, 0.6188824772834778),
         (1974.512939453125, 4926.3544921875, 1597.8326416015625)),
        ((0.6141672730445862, -0.7638262510299683, -0.1596645563840866, 0.1177929937839508),
         (1937.0584716796875, -5119.7900390625, 1631.5665283203125)),
        ((0.14550060033798218, -0.12874816358089447, 0.7660516500473022, -0.6127139329910278),
         (-1741.8111572265625, 5208.24951171875, 1464.8245849609375)),
        ((0.5912848114967346, -0.7821764349937439, 0.12445473670959473, -0.15196487307548523),
         (-1734.7105712890625, -3832.42138671875, 1548.5830078125)),
    ),
    "S8": (
        ((0.14110587537288666, -0.15589867532253265, -0.7561917304992676, 0.619644045829773),
         (2150.65185546875, 4896.1611328125, 1611.9046630859375)),
        ((0.6169601678848267, -0.7647668123245239, -0.14846350252628326, 0.11158157885074615),
         (2219.965576171875, -5148.453125, 1613.0440673828125)),
        ((0.1471444070339203, -0.13377119600772858, 0.7670128345489502, -0.6100369691848755),
         (-1571.2215576171875, 5137.0185546875, 1498.1761474609375)),
        ((0.5927824378013611, -0.7825870513916016, 0.12147816270589828, -0.14631995558738708),
         (-1476.913330078125, -3896.7412109375, 1547.97216796875)),
    ),
    "S9": (
        ((0.15540587902069092, -0.15548215806484222, -0.7532095313072205, 0.6199594736099243),
         (2044.45849609375, 4935.1171875, 1481.2275390625)),
        ((0.618784487247467, -0.7634735107421875, -0.14132238924503326, 0.11933968216180801),
         (1990.959716796875, -5123.810546875, 1568.8048095703125)),
        ((0.13357827067375183, -0.1367100477218628, 0.7689454555511475, -0.6100738644599915),
         (-1670.9921875, 5211.98583984375, 1528.387939453125)),
        ((0.5879399180412292, -0.7823407053947449, 0.1427614390850067, -0.14794869720935822),
         (-1696.04345703125, -3827.099853515625, 1591.4127197265625)),
    ),
    "S11": (
        ((0.15232472121715546, -0.15442320704460144, -0.7547563314437866, 0.6191070079803467),
         (2098.440185546875, 4926.5546875, 1500.278564453125)),
        ((0.6189449429512024, -0.7600917220115662, -0.15300633013248444, 0.1255258321762085),
         (2083.182373046875, -4912.1728515625, 1561.07861328125)),
        ((0.14943228662014008, -0.15650227665901184, 0.7681233882904053, -0.6026304364204407),
         (-1609.8153076171875, 5177.3359375, 1537.896728515625)),
        ((0.5894251465797424, -0.7818877100944519, 0.13991211354732513, -0.14715361595153809),
         (-1590.738037109375, -3854.1689453125, 1578.017578125)),
    ),
}


@dataclasses.dataclass(frozen=True)
class H36MCamera:
    """One calibrated Human3.6M camera, in ptjax's camera types (pixels; metres)."""
    id: str
    intrinsics: camera.Intrinsics
    extrinsics: camera.Extrinsics
    radial_distortion: tuple[float, float, float]
    tangential_distortion: tuple[float, float]

    @property
    def width(self) -> int:
        return int(self.intrinsics.width)

    @property
    def height(self) -> int:
        return int(self.intrinsics.height)


def get_camera(subject: str, index: int) -> H36MCamera:
    """Camera `index` (0..3) of `subject` (S1, S5-S9, S11; S2-S4 have no published extrinsics)."""
    if subject not in CAMERA_EXTRINSICS:
        raise ValueError(f"no Human3.6M camera extrinsics for subject {subject!r}; known: {sorted(CAMERA_EXTRINSICS)}")
    if not 0 <= index < len(CAMERA_INTRINSICS):
        raise ValueError(f"Human3.6M camera index must be 0..3, got {index}")
    intr = CAMERA_INTRINSICS[index]
    orientation, translation_mm = CAMERA_EXTRINSICS[subject][index]
    rotation = geometry.quat_to_matrix(np.asarray(orientation, np.float64), xp=np)
    f32 = lambda v: jnp.float32(v)  # noqa: E731
    return H36MCamera(
        id=intr["id"],
        intrinsics=camera.Intrinsics(fx=f32(intr["focal_length"][0]), fy=f32(intr["focal_length"][1]),
                                     cx=f32(intr["center"][0]), cy=f32(intr["center"][1]),
                                     width=f32(intr["res_w"]), height=f32(intr["res_h"])),
        extrinsics=camera.Extrinsics(rotation=jnp.asarray(rotation, jnp.float32),
                                     position=jnp.asarray(np.asarray(translation_mm) / 1000.0, jnp.float32)),
        radial_distortion=tuple(intr["radial_distortion"]),
        tangential_distortion=tuple(intr["tangential_distortion"]),
    )


def world_to_camera(positions_world: np.ndarray, subject: str, index: int) -> np.ndarray:
    """(T, J, 3) world metres -> (T, J, 3) in camera `index` of `subject` (OpenCV axes, metres)."""
    cam = get_camera(subject, index)
    return np.asarray(camera.world_to_camera(jnp.asarray(positions_world, jnp.float32), cam.extrinsics), np.float32)


def normalize_keypoints(pixels: np.ndarray, index: int) -> np.ndarray:
    """Pixels of camera `index` -> VideoPose3D's normalised screen coordinates (x in [-1, 1])."""
    intr = CAMERA_INTRINSICS[index]
    return np.asarray(camera.normalize_screen(jnp.asarray(pixels, jnp.float32), intr["res_w"], intr["res_h"]),
                      np.float32)


# --- files ----------------------------------------------------------------------------------------------------------

def _load_npz_item(path: str, key: str, what: str):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} file {path!r} not found")
    try:
        with np.load(path, allow_pickle=True) as npz:
            if key not in npz.files:
                raise ValueError(f"{what} file {path!r} has no {key!r} entry (has {npz.files}); expected "
                                 "VideoPose3D's layout")
            value = npz[key]
            meta = npz["metadata"].item() if "metadata" in npz.files else None
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        raise ValueError(f"{what} file {path!r} is not a readable npz ({type(e).__name__}: {e}); "
                         "is it truncated?") from e
    value = value.item() if value.dtype == object and value.shape == () else value
    if not isinstance(value, dict) or not value:
        raise ValueError(f"{what} file {path!r}: {key!r} must be a non-empty dict subject -> action -> arrays")
    return value, meta


def load_positions_3d(path: str) -> dict[str, dict[str, np.ndarray]]:
    """`data_3d_h36m.npz` -> {subject: {action: (T, 17, 3) world metres}} in H36M-17 order."""
    data, _ = _load_npz_item(path, "positions_3d", "Human3.6M 3D")
    out = {}
    for subject, actions in data.items():
        out[subject] = {}
        for action, positions in actions.items():
            positions = np.asarray(positions, np.float32)
            label = f"Human3.6M 3D {subject}/{action}"
            if positions.ndim != 3 or positions.shape[-1] != 3:
                raise ValueError(f"{label}: expected (T, 32, 3) positions, got {positions.shape}")
            if positions.shape[1] == 32:
                positions = positions[:, list(H36M32_TO_17)]
            elif positions.shape[1] != skeleton.NUM_JOINTS:
                raise ValueError(f"{label}: {positions.shape[1]} joints; expected 32 (H36M mocap) or 17 (H36M-17)")
            out[subject][action] = skeleton.check_joints(positions, name=label)
    return out


def load_positions_2d(path: str) -> tuple[dict[str, dict[str, list[np.ndarray]]], dict]:
    """`data_2d_h36m_<kind>.npz` -> ({subject: {action: [4 x (T, 17, 2) pixels]}}, metadata), H36M-17 order."""
    data, meta = _load_npz_item(path, "positions_2d", "Human3.6M 2D")
    meta = dict(meta or {})
    layout = meta.get("layout_name", "h36m")
    if layout not in ("h36m", "coco", "std"):
        raise ValueError(f"Human3.6M 2D file {path!r}: unsupported keypoint layout {layout!r} (h36m, coco)")
    out = {}
    for subject, actions in data.items():
        out[subject] = {}
        for action, cams in actions.items():
            label = f"Human3.6M 2D {subject}/{action}"
            if len(cams) != len(CAMERA_INTRINSICS):
                raise ValueError(f"{label}: {len(cams)} camera views; expected 4")
            views = []
            for c, kp in enumerate(cams):
                kp = np.asarray(kp, np.float32)
                if kp.ndim != 3 or kp.shape[-1] < 2:
                    raise ValueError(f"{label} camera {c}: expected (T, J, 2) keypoints, got {kp.shape}")
                if "num_joints" in meta and kp.shape[1] != int(meta["num_joints"]):
                    raise ValueError(f"{label} camera {c}: {kp.shape[1]} joints, but metadata says "
                                     f"num_joints={meta['num_joints']}")
                kp = kp[..., :2]
                if layout == "coco":
                    kp = skeleton.convert(kp, "coco")
                else:
                    kp = to_h36m17(kp, f"{label} camera {c}")
                views.append(skeleton.check_joints(kp, name=f"{label} camera {c}", dims=2))
            out[subject][action] = views
    return out, meta


def resolve_files(data_dir: str, keypoints: str = "gt") -> tuple[str, str]:
    """Paths of `data_3d_h36m.npz` and `data_2d_h36m_<keypoints>.npz` in `data_dir` (or its `data/`)."""
    names = ("data_3d_h36m.npz", f"data_2d_h36m_{keypoints}.npz")
    for folder in (data_dir, os.path.join(data_dir, "data")):
        paths = tuple(os.path.join(folder, n) for n in names)
        if all(os.path.isfile(p) for p in paths):
            return paths
    raise FileNotFoundError(f"Human3.6M files {list(names)} not found in {data_dir!r} (or its data/ folder); "
                            "prepare them as VideoPose3D's DATASETS.md describes")


def action_group(action: str) -> str:
    """VideoPose3D's table row of an action: its first word ('Walking 1' -> 'Walking')."""
    return action.split(" ")[0]


def sequences(data_dir: str, keypoints: str = "gt", subjects=TEST_SUBJECTS, actions=None,
              downsample: int = DOWNSAMPLE) -> list[EvalSequence]:
    """Every (subject, action, camera) of `subjects` as an `EvalSequence`, frames [::downsample].

    `actions`: optional action-name prefixes to keep (VideoPose3D's `--actions` filter).
    """
    if downsample < 1:
        raise ValueError(f"downsample must be >= 1, got {downsample}")
    path_3d, path_2d = resolve_files(data_dir, keypoints)
    poses_3d = load_positions_3d(path_3d)
    poses_2d, _ = load_positions_2d(path_2d)
    out = []
    for subject in subjects:
        if subject not in poses_3d:
            raise ValueError(f"subject {subject} is missing from {path_3d} (has {sorted(poses_3d)})")
        if subject not in poses_2d:
            raise ValueError(f"subject {subject} is missing from {path_2d} (has {sorted(poses_2d)})")
        for action in sorted(poses_3d[subject]):
            if actions is not None and not any(action.startswith(a) for a in actions):
                continue
            if action not in poses_2d[subject]:
                raise ValueError(f"action {subject}/{action} is missing from the 2D file {path_2d}")
            world = poses_3d[subject][action]
            for c, kp in enumerate(poses_2d[subject][action]):
                if len(kp) < len(world):
                    raise ValueError(f"{subject}/{action} camera {c}: {len(kp)} 2D frames but {len(world)} mocap "
                                     "frames")
                kp = kp[:len(world)]  # some H36M videos have extra frames (VideoPose3D cuts them too)
                out.append(EvalSequence(
                    name=f"{subject}/{action}/{CAMERA_INTRINSICS[c]['id']}", group=action_group(action),
                    keypoints2d=normalize_keypoints(kp, c)[::downsample],
                    joints3d=world_to_camera(world, subject, c)[::downsample],
                    fps=FPS / downsample))
    if not out:
        raise ValueError(f"no Human3.6M sequences selected (subjects {list(subjects)}, actions {actions})")
    return out


def eval_sequences(data_dir: str, keypoints: str = "gt", actions=None) -> list[EvalSequence]:
    """The evaluation protocol's sequences: S9 and S11, all actions, 4 cameras, every 2nd frame."""
    return sequences(data_dir, keypoints, TEST_SUBJECTS, actions, DOWNSAMPLE)
