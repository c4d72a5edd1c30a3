"""Data files that cannot be used (playground/data.py): where, then what is wrong and what to do.

Row problems end without a period: the row's line number, when there is one, follows them.
"""

EN = {
    "data.in_file": "{file}: {problem}",
    "data.in_row": "{file}, row {row}: {problem}",
    "data.row_at_line": "{problem} (line {line}).",
    "data.row_end": "{problem}.",
    "data.is_folder": "is a folder, not a file.",
    "data.too_big": "is {size}, over the {limit} limit; keep a smaller sample of it.",
    "data.empty_bytes": "is empty (0 bytes).",
    "data.not_found": "file not found.",
    "data.unreadable": "cannot be read ({reason}).",
    "data.utf16": "is UTF-16 text, not UTF-8; save it again as UTF-8.",
    "data.not_utf8": (
        "is not UTF-8 text: byte 0x{byte} at byte offset {offset} (line {line}) is invalid ({reason}). "
        "Save the file as UTF-8; it may be Big5 or GBK."
    ),
    "data.blank": "is empty (only whitespace).",
    "data.no_rows": "contains no rows.",
    "data.header_no_rows": "has a header but no rows.",
    "data.row_not_object": 'is {kind}, not an object with named fields like {{"instruction": ...}}',
    "data.json_where": "line {line}, column {column}",
    "data.json_truncated": "the JSON ends too early at {where} ({reason}): the file looks truncated.",
    "data.json_unterminated": "the text starting at {where} never ends: the file looks truncated.",
    "data.json_invalid": "is not valid JSON at {where}: {reason}.",
    "data.json_invalid_extra": (
        "is not valid JSON at {where}: {reason} (one object per line? then name the file .jsonl)."
    ),
    "data.json_object": 'should hold a list of rows or {{"examples": [...]}}; found an object with keys: {keys}.',
    "data.json_not_list": "should hold a list of rows; found {kind}.",
    "data.jsonl_invalid": "not valid JSON (line {line}, column {column}: {reason}).",
    "data.jsonl_invalid_array": (
        "not valid JSON (line {line}, column {column}: {reason}); this looks like a JSON array: "
        "name the file .json."
    ),
    "data.csv_cells": "has {cells} cells but the header has {columns} columns (line {line}).",
    "data.csv_cells_missing": (
        "has {cells} cells but the header has {columns} columns; missing: {missing} (line {line})."
    ),
    "data.csv_invalid": "is not valid CSV near line {line}: {reason}.",
    "data.csv_header_twice": "the header names the column '{name}' twice.",
    "data.no_instruction_column": (
        "cannot tell which column is the instruction. Columns found: {found}. Shapes accepted: "
        "{accepted}. Rename the columns, or choose them in the column mapping."
    ),
    "data.mapping_no_instruction": "the column mapping must say which column holds the instruction.",
    "data.mapping_no_column": (
        "the column mapping picks '{column}' for {role}, but there is no such column (columns found: {found})."
    ),
    "data.no_usable_rows": ("no usable rows: none of the {rows} rows has any text in the '{column}' column."),
    "data.references_empty": "every line of the references file is empty; answers are needed here.",
    "data.no_output_column": "has no output column; this needs a file with answers.",
    "data.output_empty": "the output column '{column}' is empty in every row; answers are needed.",
    "data.references_count": (
        "has {rows} rows but the references file {references} has {lines} lines; they must match one "
        "to one (one answer per line, in row order)."
    ),
    "data.row.not_text": "column '{column}' should be text but is {kind}",
    "data.row.too_long": "column '{column}' has {chars} characters; the limit is {limit} per field",
    "data.row.surrogate": "column '{column}' contains a broken \\ud800-style escape (a lone surrogate)",
    "data.row.not_texts": "column '{column}' should be text or a list of texts but is {kind}",
    "data.row.not_scores": "column '{column}' should map each answer to a score but is {kind}",
    "data.row.no_id": "has no {column}; give every row an id, or remove the '{column}' column",
    "data.row.bad_id": "column '{column}' should be text or a whole number but is {kind}",
    "data.row.repeated_id": "repeats the id '{id}' of row {first}; ids must be unique",
    "data.kind.bool": "true/false ({value})",
    "data.kind.number": "a number ({value})",
    "data.kind.text": "text",
    "data.kind.list": "a list",
    "data.kind.object": "an object",
    "data.kind.null": "null",
    "data.kind.other": "{name}",
}

ZH_TW = {
    "data.in_file": "{file}：{problem}",
    "data.in_row": "{file} 第 {row} 筆資料：{problem}",
    "data.row_at_line": "{problem}（第 {line} 行）。",
    "data.row_end": "{problem}。",
    "data.is_folder": "是資料夾，不是檔案。",
    "data.too_big": "大小為 {size}，超過 {limit} 的上限；請只保留其中一小部分樣本。",
    "data.empty_bytes": "是空檔案（0 位元組）。",
    "data.not_found": "找不到檔案。",
    "data.unreadable": "無法讀取（{reason}）。",
    "data.utf16": "是 UTF-16 文字，不是 UTF-8；請重新另存為 UTF-8。",
    "data.not_utf8": (
        "不是 UTF-8 文字：位移 {offset} 的位元組 0x{byte}（第 {line} 行）無效（{reason}）。"
        "請把檔案另存為 UTF-8；它可能是 Big5 或 GBK 編碼。"
    ),
    "data.blank": "是空的（只有空白字元）。",
    "data.no_rows": "沒有任何資料。",
    "data.header_no_rows": "只有標題列，沒有資料。",
    "data.row_not_object": '是{kind}，不是像 {{"instruction": ...}} 這樣有欄位名稱的物件',
    "data.json_where": "第 {line} 行第 {column} 個字元",
    "data.json_truncated": "JSON 在{where}提早結束（{reason}）：檔案看起來被截斷了。",
    "data.json_unterminated": "從{where}開始的文字沒有結束：檔案看起來被截斷了。",
    "data.json_invalid": "在{where}不是有效的 JSON：{reason}。",
    "data.json_invalid_extra": "在{where}不是有效的 JSON：{reason}（每行一個物件嗎？那請把副檔名改成 .jsonl）。",
    "data.json_object": '應該是資料的清單或 {{"examples": [...]}}；但找到的是一個物件，鍵為：{keys}。',
    "data.json_not_list": "應該是資料的清單；但找到的是{kind}。",
    "data.jsonl_invalid": "不是有效的 JSON（第 {line} 行第 {column} 個字元：{reason}）。",
    "data.jsonl_invalid_array": (
        "不是有效的 JSON（第 {line} 行第 {column} 個字元：{reason}）；這看起來是 JSON 陣列：請把副檔名改成 .json。"
    ),
    "data.csv_cells": "有 {cells} 個儲存格，但標題列有 {columns} 個欄位（第 {line} 行）。",
    "data.csv_cells_missing": "有 {cells} 個儲存格，但標題列有 {columns} 個欄位；缺少：{missing}（第 {line} 行）。",
    "data.csv_invalid": "在第 {line} 行附近不是有效的 CSV：{reason}。",
    "data.csv_header_twice": "標題列中欄位「{name}」出現了兩次。",
    "data.no_instruction_column": (
        "無法判斷哪個欄位是指令（instruction）。找到的欄位：{found}。可接受的格式：{accepted}。"
        "請重新命名欄位，或在欄位對應中指定。"
    ),
    "data.mapping_no_instruction": "欄位對應必須指定哪個欄位是指令（instruction）。",
    "data.mapping_no_column": "欄位對應把「{column}」指定為 {role}，但資料集中沒有這個欄位（找到的欄位：{found}）。",
    "data.no_usable_rows": "沒有可用的資料：{rows} 筆資料的「{column}」欄位都沒有文字。",
    "data.references_empty": "參考答案檔的每一行都是空的；這裡需要答案。",
    "data.no_output_column": "沒有輸出（output）欄位；這裡需要有答案的檔案。",
    "data.output_empty": "輸出欄位「{column}」在每一筆資料中都是空的；這裡需要答案。",
    "data.references_count": (
        "有 {rows} 筆資料，但參考答案檔 {references} 有 {lines} 行；兩者必須一一對應（每行一個答案，依資料順序）。"
    ),
    "data.row.not_text": "欄位「{column}」應該是文字，但卻是{kind}",
    "data.row.too_long": "欄位「{column}」有 {chars} 個字元；每個欄位上限為 {limit} 個",
    "data.row.surrogate": "欄位「{column}」含有損壞的 \\ud800 形式跳脫字元（孤立的代理字元）",
    "data.row.not_texts": "欄位「{column}」應該是文字或文字清單，但卻是{kind}",
    "data.row.not_scores": "欄位「{column}」應該把每個答案對應到一個分數，但卻是{kind}",
    "data.row.no_id": "沒有 {column}；請給每筆資料一個 id，或移除「{column}」欄位",
    "data.row.bad_id": "欄位「{column}」應該是文字或整數，但卻是{kind}",
    "data.row.repeated_id": "重複了第 {first} 筆資料的 id「{id}」；id 必須唯一",
    "data.kind.bool": "布林值（{value}）",
    "data.kind.number": "數字（{value}）",
    "data.kind.text": "文字",
    "data.kind.list": "清單",
    "data.kind.object": "物件",
    "data.kind.null": "空值（null）",
    "data.kind.other": "{name}",
}
