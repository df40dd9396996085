"""Write the corpus of malformed (and a few valid) input files in this folder, with cases.json.

Run ``python tests/data/bad/make_corpus.py`` to regenerate; the files are committed so that a
change here shows in review. Each case says how ``stgnn data check FILE [ARGS]`` must end:

* ``refuse``: exit 2, one line naming ``FILE:LINE: field 'FIELD'`` (``LINE`` ``null``: a Parquet
  file's own damage, which has no line);
* ``flag``: exit 1 (bad rows skipped), every expected ``FILE:LINE: field 'FIELD'`` in the report;
* ``accept``: exit 0 with ``ROWS`` check-ins (the file is valid, e.g. Latin-1 or CRLF).

Tested by ``tests/data/test_bad_corpus.py``; ``python tests/data/bad/report.py`` prints the
README's table from the same run.
"""
from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent


def tsmc_line(user: str = "u1", venue: str = "v1", cat: str = "Coffee Shop", lat: str = "40.71",
              lon: str = "-74.01", tz: str = "-240", time: str = "Tue Apr 03 18:00:09 +0000 2012",
              cat_id: str = "c1") -> str:
    return "\t".join((user, venue, cat_id, cat, lat, lon, tz, time))


def tsmc(*bad: str, good: int = 3) -> str:
    """``good`` valid lines around the bad ones: line 1 good, then the bad lines, then the rest."""
    goods = [tsmc_line(user=f"u{i}", venue=f"v{i}", time=f"Tue Apr 03 1{i}:00:09 +0000 2012") for i in range(good)]
    return "\n".join([goods[0], *bad, *goods[1:]]) + "\n"


def gowalla_line(user: str = "7", time: str = "2010-10-19T23:55:27Z", lat: str = "30.23",
                 lon: str = "-97.79", loc: str = "22847") -> str:
    return "\t".join((user, time, lat, lon, loc))


def gowalla(*bad: str) -> str:
    goods = [gowalla_line(user=str(i), time=f"2010-10-1{i}T23:55:27Z", loc=str(100 + i)) for i in range(3)]
    return "\n".join([goods[0], *bad, *goods[1:]]) + "\n"


CSV_COLS = "user=uid,item=sku,time=ts,lat=la,lon=lo"


def csv_text(*bad: str, header: str = "uid,sku,ts,la,lo") -> str:
    goods = [f"u{i},s{i},{1600000000 + 3600 * i},48.1{i},11.5{i}" for i in range(3)]
    return "\n".join([header, goods[0], *bad, *goods[1:]]) + "\n"


def gz(text: str | bytes) -> bytes:
    return gzip.compress(text.encode("utf-8") if isinstance(text, str) else text, mtime=0)


def parquet(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def cases() -> list[dict]:
    """``[{file, data, args, expect, line, field | errors | rows}]``; ``data`` is written to ``file``."""
    out: list[dict] = []

    def refuse(file, data, line, field, args=()):
        out.append(dict(file=file, data=data, args=list(args), expect="refuse", line=line, field=field))

    def flag(file, data, errors, args=()):
        out.append(dict(file=file, data=data, args=list(args), expect="flag", errors=errors))

    def accept(file, data, rows, args=()):
        out.append(dict(file=file, data=data, args=list(args), expect="accept", rows=rows))

    # ------------------------------------------------------------------ TSMC2014 (8 tab-separated fields)
    flag("tsmc_lat_range.txt", tsmc(tsmc_line(lat="95.0")), [[2, "lat"]])
    flag("tsmc_lon_range.txt", tsmc(tsmc_line(lon="-200.5")), [[2, "lon"]])
    flag("tsmc_lat_text.txt", tsmc(tsmc_line(lat="north")), [[2, "lat"]])
    flag("tsmc_lat_nan.txt", tsmc(tsmc_line(lat="nan")), [[2, "lat"]])
    flag("tsmc_lon_inf.txt", tsmc(tsmc_line(lon="inf")), [[2, "lon"]])
    flag("tsmc_tz_fraction.txt", tsmc(tsmc_line(tz="-240.5")), [[2, "tz_offset_min"]])
    flag("tsmc_tz_range.txt", tsmc(tsmc_line(tz="9999")), [[2, "tz_offset_min"]])
    flag("tsmc_time_garbage.txt", tsmc(tsmc_line(time="Tux Apr 03 18:00:09 +0000 2012")), [[2, "utc_time"]])
    flag("tsmc_time_feb30.txt", tsmc(tsmc_line(time="Thu Feb 30 18:00:09 +0000 2012")), [[2, "utc_time"]])
    flag("tsmc_time_1900.txt", tsmc(tsmc_line(time="Mon Jan 01 00:00:00 +0000 1900")), [[2, "utc_time"]])
    flag("tsmc_time_2999.txt", tsmc(tsmc_line(time="Tue Jan 01 00:00:00 +0000 2999")), [[2, "utc_time"]])
    flag("tsmc_time_epoch0.txt", tsmc(tsmc_line(time="Thu Jan 01 00:00:00 +0000 1970")), [[2, "utc_time"]])
    flag("tsmc_7_fields.txt", tsmc("\t".join(tsmc_line().split("\t")[:7])), [[2, "line"]])
    flag("tsmc_9_fields.txt", tsmc(tsmc_line() + "\textra"), [[2, "line"]])
    flag("tsmc_empty_user.txt", tsmc(tsmc_line(user="")), [[2, "user"]])
    flag("tsmc_blank_venue.txt", tsmc(tsmc_line(venue="   ")), [[2, "venue_id"]])
    flag("tsmc_nul_in_user.txt", tsmc(tsmc_line(user="u28\x00")), [[2, "user"]])
    flag("tsmc_escape_in_venue.txt", tsmc(tsmc_line(venue="v\x1b[31m")), [[2, "venue_id"]])
    flag("tsmc_nul_in_category.txt", tsmc(tsmc_line(cat="Caf\x00e")), [[2, "venue_category_name"]])
    flag("tsmc_two_bad_lines.txt", tsmc(tsmc_line(lat="95"), tsmc_line(time="yesterday")),
         [[2, "lat"], [3, "utc_time"]])
    flag("tsmc_header_line.txt", "\t".join(("userId", "venueId", "venueCategoryId", "venueCategory", "latitude",
                                            "longitude", "timezoneOffset", "utcTimestamp")) + "\n" + tsmc(),
         [[1, "lat"]])
    mixed = (tsmc_line(cat="Caf\u00e9").encode("utf-8") + b"\n" + tsmc_line(cat="Caf\u00e9", user="u9").encode("latin-1")
             + b"\n" + tsmc().encode("utf-8"))
    flag("tsmc_mixed_encoding.txt", mixed, [[2, "encoding"]])
    refuse("tsmc_space_separated.txt", tsmc().replace("\t", " "), 1, "format")
    refuse("tsmc_cr_line_endings.txt", tsmc().replace("\n", "\r"), 1, "line")
    refuse("tsmc_empty.txt", b"", 1, "file")
    refuse("tsmc_blank_lines.txt", "\n  \n\t\n", 1, "file")
    refuse("tsmc_binary.txt", bytes(range(256)) * 4, 1, "format")
    refuse("tsmc_utf16.txt", tsmc().encode("utf-16"), 1, "format")
    refuse("tsmc_all_rows_bad.txt", "\n".join(tsmc_line(lat="95") for _ in range(3)) + "\n", 1, "lat")
    refuse("tsmc_wrong_encoding_forced.txt", tsmc(tsmc_line(cat="Caf\u00e9")).encode("latin-1"), 2, "encoding",
           args=["--encoding", "utf-8"])
    refuse("tsmc_time_outside_window.txt", tsmc(), 1, "utc_time", args=["--time-window", "2013,2020"])
    accept("tsmc_latin1.txt", tsmc(tsmc_line(cat="Caf\u00e9", user="u7")).encode("latin-1"), 4)
    accept("tsmc_bom_crlf.txt", b"\xef\xbb\xbf" + tsmc().replace("\n", "\r\n").encode("utf-8"), 3)
    accept("tsmc_duplicates.txt", tsmc(tsmc_line(user="u0", venue="v0", time="Tue Apr 03 10:00:09 +0000 2012")),
           3)  # the exact duplicate of line 1 is dropped
    accept("tsmc_time_window_widened.txt", tsmc(tsmc_line(time="Mon Jan 01 00:00:00 +0000 1990")), 4,
           args=["--time-window", "1980,2100"])

    # ------------------------------------------------------------------ pre-split sets (GETNext's NYC_*.csv)
    getnext = ("user_id,POI_id,POI_catid,POI_catid_code,POI_catname,latitude,longitude,timezone,UTC_time,"
               "local_time,day_of_week,norm_in_day_time,trajectory_id,norm_day_shift,norm_relative_time\n"
               "1,v1,c1,0,Bar,40.71,-74.0,-240,2012-04-03 18:00:09+00:00,2012-04-03 14:00:09-04:00,1,0.58,1_1,0,0.0\n")
    refuse("presplit_lone_train.csv", getnext, None, "file")  # its _val.csv and _test.csv are missing
    refuse("presplit_sthgcn_derived_sample.csv", "check_ins_id,UTCTimeOffset,UTCTimeOffsetEpoch,"
           "pseudo_session_trajectory_id,UserId,Latitude,Longitude,PoiId,PoiCategoryId,PoiCategoryName\n"
           "0,2012-04-03 14:00:09,1333461609,0,0,40.71,-74.0,0,0,Bar\n", 1, "UTCTime")

    # ------------------------------------------------------------------ gzip
    good_gz = gz(tsmc())
    refuse("gz_truncated.txt.gz", good_gz[: len(good_gz) // 2], 1, "gzip")
    refuse("gz_bad_crc.txt.gz", good_gz[:-8] + bytes(b ^ 0xFF for b in good_gz[-8:-4]) + good_gz[-4:], 1, "gzip")
    flipped = bytearray(good_gz)
    flipped[len(flipped) // 2] ^= 0x10
    refuse("gz_flipped_bit.txt.gz", bytes(flipped), 1, "gzip")
    refuse("gz_trailing_garbage.txt.gz", good_gz + b"garbage!", 4, "gzip")
    refuse("gz_magic_only.txt.gz", good_gz[:2], 1, "gzip")
    refuse("gz_empty_content.txt.gz", gz(b""), 1, "file")
    flag("gz_bad_row_inside.txt.gz", gz(tsmc(tsmc_line(lat="95.0"))), [[2, "lat"]])
    flag("gz_gowalla_bad_time.txt.gz", gz(gowalla(gowalla_line(time="19/10/2010 23:55")))
         , [[2, "utc_time"]])
    refuse("gz_csv_truncated.csv.gz", gz(csv_text())[:30], 1, "gzip", args=["--columns", CSV_COLS])
    accept("gz_valid.txt.gz", good_gz, 3)

    # ------------------------------------------------------------------ Gowalla (5 tab-separated fields)
    flag("gowalla_time_garbage.txt", gowalla(gowalla_line(time="18/10/2010 22:17")), [[2, "utc_time"]])
    flag("gowalla_time_1900.txt", gowalla(gowalla_line(time="1900-01-01T00:00:00Z")), [[2, "utc_time"]])
    flag("gowalla_time_epoch_ms.txt", gowalla(gowalla_line(time="1287532527000")), [[2, "utc_time"]])
    flag("gowalla_lat_range.txt", gowalla(gowalla_line(lat="-91")), [[2, "lat"]])
    flag("gowalla_empty_location.txt", gowalla(gowalla_line(loc="")), [[2, "location_id"]])
    flag("gowalla_4_fields.txt", gowalla("\t".join(gowalla_line().split("\t")[:4])), [[2, "line"]])
    flag("gowalla_nul_in_user.txt", gowalla(gowalla_line(user="7\x00")), [[2, "user"]])
    flag("gowalla_control_in_location.txt", gowalla(gowalla_line(loc="22\x0847")), [[2, "location_id"]])
    refuse("gowalla_comma_separated.txt", gowalla().replace("\t", ","), 1, "format")
    accept("gowalla_valid.txt", gowalla(), 3)

    # ------------------------------------------------------------------ own CSV (--columns)
    c = ["--columns", CSV_COLS]
    refuse("csv_no_columns_given.csv", csv_text(), 1, "columns")
    refuse("csv_header_only.csv", "uid,sku,ts,la,lo\n", 1, "file", args=c)
    refuse("csv_empty.csv", b"", 1, "file", args=c)
    refuse("csv_missing_column.csv", csv_text(header="uid,sku,when,la,lo"), 1, "time", args=c)
    refuse("csv_duplicate_header.csv", csv_text(header="uid,sku,ts,la,la"), 1, "header", args=c)
    refuse("csv_semicolons.csv", csv_text().replace(",", ";"), 1, "user", args=c)
    refuse("csv_time_mixed_epoch_iso.csv", csv_text("u9,s9,2020-09-13T12:00:00Z,48.1,11.5"), 3, "time", args=c)
    refuse("csv_time_mixed_s_ms.csv", csv_text("u9,s9,1600000000000,48.1,11.5"), 3, "time", args=c)
    refuse("csv_time_small_numbers.csv", "uid,sku,ts\na,x,1\nb,y,2\n", 2, "time",
           args=["--columns", "user=uid,item=sku,time=ts"])
    refuse("csv_time_day_first.csv", "uid,sku,ts\na,x,04/03/2021 10:00\nb,y,05/03/2021 11:00\n", 2, "time",
           args=["--columns", "user=uid,item=sku,time=ts"])
    refuse("csv_ms_read_as_seconds.csv", "uid,sku,ts\na,x,1600000000000\nb,y,1600000360000\n", 2, "time",
           args=["--columns", "user=uid,item=sku,time=ts", "--time-unit", "s"])
    flag("csv_time_nan.csv", csv_text("u9,s9,nan,48.1,11.5"), [[3, "time"]], args=c)
    flag("csv_time_1e308.csv", csv_text("u9,s9,1e308,48.1,11.5"), [[3, "time"]], args=c)
    flag("csv_time_epoch0.csv", csv_text("u9,s9,0,48.1,11.5"), [[3, "time"]], args=c)
    flag("csv_wrong_field_count.csv", csv_text("u9,s9,1600000000,48.1,11.5,extra"), [[3, "line"]], args=c)
    flag("csv_nul_in_user.csv", csv_text("u\x009,s9,1600000000,48.1,11.5"), [[3, "user"]], args=c)
    flag("csv_empty_item.csv", csv_text("u9,,1600000000,48.1,11.5"), [[3, "item"]], args=c)
    flag("csv_lat_without_lon.csv", csv_text("u9,s9,1600000000,48.1,"), [[3, "lat"]], args=c)
    flag("csv_lon_range.csv", csv_text("u9,s9,1600000000,48.1,181"), [[3, "lon"]], args=c)
    flag("csv_tz_range.csv", "uid,sku,ts,z\na,x,1600000000,60\nb,y,1600000100,-9000\n", [[3, "tz"]],
         args=["--columns", "user=uid,item=sku,time=ts,tz=z"])
    flag("csv_mixed_encoding.csv", csv_text("u\u00e9,s9,1600000000,48.1,11.5").encode("utf-8")
         + "u\u00e9,s8,1600000001,48.1,11.5\n".encode("latin-1"), [[6, "encoding"]], args=c)
    flag("csv_multiline_then_bad.csv", 'uid,sku,ts,txt\na,x,1600000001,"two\nlines"\nb,,1600000002,plain\n',
         [[4, "item"]], args=["--columns", "user=uid,item=sku,time=ts,text=txt"])
    accept("csv_valid.csv", csv_text(), 3, args=c)
    accept("csv_valid_ms.csv", "uid,sku,ts\na,x,1600000000123\nb,y,1600000360000\n", 2,
           args=["--columns", "user=uid,item=sku,time=ts"])
    accept("csv_valid_iso_offsets.csv", "uid,sku,ts\na,x,2021-03-04T12:00:00+01:00\nb,y,2021-03-04 12:30:00\n", 2,
           args=["--columns", "user=uid,item=sku,time=ts"])
    accept("csv_valid_no_location.tsv", "uid\tsku\tts\na\tx\t1600000000\n", 1,
           args=["--columns", "user=uid,item=sku,time=ts"])
    accept("csv_valid_strftime.csv", "uid,sku,ts\na,x,04/03/2021 10:00\n", 1,
           args=["--columns", "user=uid,item=sku,time=ts", "--time-unit", "%d/%m/%Y %H:%M"])

    # ------------------------------------------------------------------ Parquet (--columns)
    p = ["--columns", "user=uid,item=sku,time=at"]
    base = {"uid": ["a", "b", "c"], "sku": ["x", "y", "z"],
            "at": pd.to_datetime(["2022-01-01 00:00:10", "2022-01-01 00:00:05", "2022-01-01 00:00:20"])}
    good_pq = parquet(pd.DataFrame(base))
    flag("pq_null_user.parquet", parquet(pd.DataFrame({**base, "uid": ["a", None, "c"]})), [[2, "user"]], args=p)
    flag("pq_time_1900.parquet", parquet(pd.DataFrame({**base, "at": pd.to_datetime(
        ["2022-01-01 00:00:10", "1900-01-01 00:00:00", "2022-01-01 00:00:20"])})), [[2, "time"]], args=p)
    flag("pq_time_null.parquet", parquet(pd.DataFrame({**base, "at": pd.to_datetime(
        ["2022-01-01 00:00:10", None, "2022-01-01 00:00:20"])})), [[2, "time"]], args=p)
    flag("pq_nul_in_item.parquet", parquet(pd.DataFrame({**base, "sku": ["x", "y\x00", "z"]})), [[2, "item"]], args=p)
    refuse("pq_epoch_ms_as_seconds.parquet", parquet(pd.DataFrame({**base, "at": [1640995210000, 1640995205000,
                                                                                  1640995220000]})), 1, "time",
           args=[*p, "--time-unit", "s"])
    refuse("pq_truncated.parquet", good_pq[: len(good_pq) // 2], None, "parquet", args=p)
    refuse("pq_not_parquet.parquet", csv_text(), None, "parquet", args=p)
    refuse("pq_missing_column.parquet", good_pq, None, "time", args=["--columns", "user=uid,item=sku,time=when"])
    refuse("pq_no_columns_given.parquet", good_pq, 1, "columns")
    refuse("pq_empty_table.parquet", parquet(pd.DataFrame({k: v[:0] for k, v in base.items()})), 1, "file", args=p)
    accept("pq_valid.parquet", good_pq, 3, args=p)
    accept("pq_valid_epoch_ms.parquet", parquet(pd.DataFrame({**base, "at": [1640995210000, 1640995205000,
                                                                             1640995220000]})), 3, args=p)
    return out


def main() -> None:
    manifest = []
    for case in cases():
        data = case.pop("data")
        (HERE / case["file"]).write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        manifest.append(case)
    (HERE / "cases.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {len(manifest)} files and cases.json to {HERE}")


if __name__ == "__main__":
    main()
