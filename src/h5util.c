/* h5util: small HDF5 helpers shared by the image-set and checkpoint files:
 * typed attributes (write and bounded read) and silencing HDF5's own error
 * printing. Every function returns 0 or -1; none prints. */
#include "mnist/h5util.h"

#include <string.h>

void h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

int h5_attr_write(hid_t obj, const char *name, hid_t file_type, hid_t mem_type, int n,
                      const void *value)
{
    hsize_t dims[1] = {(hsize_t)n};
    hid_t s = n == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, dims, NULL);
    hid_t a = H5Acreate2(obj, name, file_type, s, H5P_DEFAULT, H5P_DEFAULT);
    int rc = (a >= 0 && H5Awrite(a, mem_type, value) >= 0) ? 0 : -1;
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(s);
    return rc;
}

int h5_attr_write_str(hid_t obj, const char *name, const char *value)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(value) + 1);
    int rc = h5_attr_write(obj, name, t, t, 0, value);
    H5Tclose(t);
    return rc;
}

int h5_attr_read(hid_t obj, const char *name, hid_t mem_type, size_t max_n, void *out,
                     size_t *n_out)
{
    if (H5Aexists(obj, name) <= 0)
        return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0)
        return -1;
    hid_t s = H5Aget_space(a);
    hssize_t n = H5Sget_simple_extent_npoints(s);
    int rc = (n >= 1 && (size_t)n <= max_n && H5Aread(a, mem_type, out) >= 0) ? 0 : -1;
    if (n_out)
        *n_out = (size_t)n;
    H5Sclose(s);
    H5Aclose(a);
    return rc;
}

int h5_attr_read_str(hid_t obj, const char *name, char *buf, size_t size)
{
    if (H5Aexists(obj, name) <= 0)
        return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t ft = a >= 0 ? H5Aget_type(a) : H5I_INVALID_HID;
    int rc = -1;
    if (ft >= 0 && H5Tget_class(ft) == H5T_STRING && !H5Tis_variable_str(ft) &&
        H5Tget_size(ft) <= size) {
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, H5Tget_size(ft));
        memset(buf, 0, size);
        rc = H5Aread(a, t, buf) >= 0 ? 0 : -1;
        buf[size - 1] = '\0';
        H5Tclose(t);
    }
    if (ft >= 0)
        H5Tclose(ft);
    if (a >= 0)
        H5Aclose(a);
    return rc;
}

