#!/usr/bin/python3
"""json2csv: converts every JSON export in a directory (a list of flat objects, or an object whose
"items" is one) into a CSV file of the same name in another directory.

    python3 json2csv.py IN_DIR OUT_DIR

Each CSV is written to a temporary file beside it and renamed into place, so that readers never see
half a file. The columns are the union of the objects' keys, in the order first seen.
"""
import csv
import json
import os
import sys
import tempfile


def rows_of(path):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    return data["items"] if isinstance(data, dict) else data


def convert(src, dst):
    rows = rows_of(src)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dst), suffix=".tmp")
    with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    os.chmod(tmp, 0o644)
    os.replace(tmp, dst)
    return len(rows)


def main(in_dir, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    for name in sorted(os.listdir(in_dir)):
        if name.endswith(".json"):
            dst = os.path.join(out_dir, name[:-5] + ".csv")
            print(f"{name}: {convert(os.path.join(in_dir, name), dst)} rows")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: json2csv.py IN_DIR OUT_DIR")
    main(sys.argv[1], sys.argv[2])
