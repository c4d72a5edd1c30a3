"""Loading a model (playground/models): an unknown name, a hub out of reach, memory, no model."""

EN = {
    "models.none_typed": "Type a model: a preset, a Hugging Face id (org/name) or a local folder.",
    "models.none_typed_shared": "Type a model: a preset or a Hugging Face id (org/name).",
    "models.is_file": "{name} is a file; give the folder that holds config.json and the weights.",
    "models.is_adapter": "{name} is an adapter, not a model: load its base model and pick the adapter there.",
    "models.no_config": "Folder {name} has no config.json, so it is not a Hugging Face model folder.",
    "models.no_weights": "Folder {name} has a config.json but no weights (*.safetensors).",
    "models.no_folder": "No folder {name}.",
    "models.unknown": "{name} is neither a preset, a local folder, nor a Hugging Face id of the form org/name.",
    "models.not_allowed": (
        "{name} is not a model this playground may load: choose a preset, a Hugging Face id "
        "(org/name), or a folder under the models folder the operator set (PLAYGROUND_MODELS_DIR)."
    ),
    "models.offline": (
        "Could not load {name}: it is not in the local Hugging Face cache and the hub cannot be "
        "reached from here. Download it where there is network (huggingface-cli download "
        "{source}) into the HF cache (~/.cache/huggingface) or a folder, then type that folder's path."
    ),
    "models.no_gpu": "CUDA was asked for but no GPU is visible; choose device cpu or auto.",
    "models.out_of_memory": (
        "Out of GPU memory loading {name}. Try 4-bit precision, a smaller model, or free "
        "the GPU from other processes."
    ),
    "models.none_loaded": "No model is loaded. Pick one at the top of the page and press Load.",
    "models.note.no_bitsandbytes": "bitsandbytes is not installed, so {precision} is not available: loaded bf16.",
    "models.note.quantization_needs_gpu": (
        "{asked} quantization (bitsandbytes) needs a CUDA GPU; on CPU the model is loaded in {precision}."
    ),
    "models.note.cpu_auto": "CPU: no 4-bit quantization; loaded {precision} because {why}.",
    "models.note.cpu_bf16": "this CPU has native bf16 matmul",
    "models.note.cpu_no_bf16": "this CPU lacks native bf16",
    "models.note.int4_cpu": (
        "CPU: int4 runs through PyTorch's CPU kernel ({dtype} compute): a quarter of the memory, about "
        "the speed of bf16 (the speed-up is a GPU one)."
    ),
    "models.note.no_chat_template": "The tokenizer has no chat template; using the plain template.",
    "models.note.weightless": "No weights here: generation by {url}.",
}

ZH_TW = {
    "models.none_typed": "請輸入模型：預設模型、Hugging Face id（org/name）或本機資料夾。",
    "models.none_typed_shared": "請輸入模型：預設模型或 Hugging Face id（org/name）。",
    "models.is_file": "{name} 是檔案；請給放有 config.json 與權重的資料夾。",
    "models.is_adapter": "{name} 是轉接器（adapter），不是模型：請先載入它的基礎模型，再在那裡選擇這個轉接器。",
    "models.no_config": "資料夾 {name} 沒有 config.json，所以不是 Hugging Face 模型資料夾。",
    "models.no_weights": "資料夾 {name} 有 config.json，但沒有權重檔（*.safetensors）。",
    "models.no_folder": "沒有資料夾 {name}。",
    "models.unknown": "{name} 不是預設模型、本機資料夾，也不是 org/name 形式的 Hugging Face id。",
    "models.not_allowed": (
        "{name} 不是這個遊樂場可以載入的模型：請選擇預設模型、Hugging Face id（org/name），"
        "或管理者設定的模型資料夾（PLAYGROUND_MODELS_DIR）底下的資料夾。"
    ),
    "models.offline": (
        "無法載入 {name}：它不在本機的 Hugging Face 快取中，這裡也連不上 Hugging Face Hub。"
        "請在有網路的地方下載（huggingface-cli download {source}）到 HF 快取（~/.cache/huggingface）"
        "或某個資料夾，再輸入那個資料夾的路徑。"
    ),
    "models.no_gpu": "指定了 CUDA，但看不到任何 GPU；請把裝置改成 cpu 或 auto。",
    "models.out_of_memory": "載入 {name} 時 GPU 記憶體不足。請改用 4-bit 精度、較小的模型，或關閉其他占用 GPU 的程式。",
    "models.none_loaded": "尚未載入模型。請在頁面最上方選擇一個模型，再按「載入」。",
    "models.note.no_bitsandbytes": "沒有安裝 bitsandbytes，無法使用 {precision}：改以 bf16 載入。",
    "models.note.quantization_needs_gpu": "{asked} 量化（bitsandbytes）需要 CUDA GPU；在 CPU 上改以 {precision} 載入模型。",
    "models.note.cpu_auto": "CPU：不做 4-bit 量化；以 {precision} 載入，因為{why}。",
    "models.note.cpu_bf16": "這顆 CPU 支援原生 bf16 矩陣運算",
    "models.note.cpu_no_bf16": "這顆 CPU 不支援原生 bf16",
    "models.note.int4_cpu": "CPU：int4 使用 PyTorch 的 CPU 核心（以 {dtype} 計算）：記憶體只要四分之一，速度約與 bf16 相同（加速效果在 GPU 上）。",
    "models.note.no_chat_template": "這個 tokenizer 沒有對話模板；改用純文字模板。",
    "models.note.weightless": "本機沒有權重：由 {url} 產生文字。",
}
