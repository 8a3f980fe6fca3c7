"""Open an Ansatz dataset with xarray and check what a user relies on.

Usage: python open_dataset.py DATASET.nc [DATASET_2D.nc]

Needs xarray and netCDF4 (`pip install xarray netCDF4`). Exits non-zero with a message if anything is off.
"""

import sys

import numpy as np
import xarray as xr


def check(path):
    ds = xr.open_dataset(path)
    two_d = "y" in ds.dims
    space = ("y", "x") if two_d else ("x",)
    fields = ["u", "v"] if two_d else ["u"]
    for f in fields:
        assert ds[f].dims == ("sample", "t") + space, f"{f} dims {ds[f].dims}"
        assert ds[f].dtype == np.float32, f"{f} dtype {ds[f].dtype}"
        assert np.isfinite(ds[f].values).all(), f"{f} has non-finite values"
        assert "_FillValue" not in ds[f].encoding or ds[f].encoding["_FillValue"] is None
        assert ds[f].encoding.get("zlib") and ds[f].encoding.get("shuffle"), ds[f].encoding
        chunks = ds[f].encoding.get("chunksizes")
        assert chunks[0] == 1 and tuple(chunks[2:]) == tuple(ds.sizes[d] for d in space), chunks
    for c in ["x", "t"] + (["y"] if two_d else []):
        assert c in ds.coords, f"coordinate {c} missing"
        assert ds[c].attrs.get("units") == "1" and "axis" not in ds[c].attrs, ds[c].attrs
    # the nondimensional time stays a plain float (units "1"), not decoded to datetimes or timedeltas
    assert np.issubdtype(ds["t"].dtype, np.floating), ds["t"].dtype
    assert float(ds["t"][0]) == 0.0
    assert float(ds["u"].sel(t=float(ds["t"][-1])).isel(sample=0).mean()) == float(ds["u"][0, -1].mean())
    # per-sample parameters live on the sample dimension
    assert ds["nu"].dims == ("sample",) and (ds["nu"] > 0).all()
    assert ds.attrs["simulation_parameters"].split() == ["nu"]
    for key in ["Conventions", "title", "source", "history", "pde", "n_spatial_dims", "domain_extent", "bc_x",
                "seed", "ansatz_version", "ansatz_schema", "samples_complete", "context_frames", "grid_type"]:
        assert key in ds.attrs, f"global attribute {key} missing"
    assert ds.attrs["Conventions"] == "CF-1.11"
    assert int(ds.attrs["samples_complete"]) == ds.sizes["sample"]
    if ds.attrs["grid_type"] == "cell_centered":
        assert "x_bnds" in ds and ds["x"].attrs["bounds"] == "x_bnds"
        h = float(ds["x"][1] - ds["x"][0])
        assert abs(float(ds["x_bnds"][0, 1] - ds["x_bnds"][0, 0]) - h) < 1e-12
    # the one-line adapter to PDEBench's [sample, time, x, (y)] order
    pdebench = ds["u"].transpose("sample", "t", "x", *(["y"] if two_d else []))
    assert pdebench.shape[2] == ds.sizes["x"]
    print(f"{path}: ok ({ds.attrs['pde']}, dims {dict(ds.sizes)}, fields {fields})")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for p in sys.argv[1:]:
        check(p)
