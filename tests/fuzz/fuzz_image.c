/* libFuzzer harness for predict's image files: the input is decoded as a
 * PNG or JPEG from memory (libpng, libjpeg-turbo through image_decode) and,
 * when it decodes, preprocessed as an MNIST digit. A refusal must name the
 * input and leave nothing allocated; a decoded image must have its size. */
#include "fuzz_common.h"
#include "mnist/digit.h"
#include "mnist/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    GreyImage g;
    Error e = {{0}};
    if (image_decode(&g, data, size, "fuzz.png", &e) != 0) {
        FUZZ_CHECK(g.px == NULL, "refused but not empty");
        fuzz_check_message(e.msg, sizeof e.msg, "fuzz.png");
        return 0;
    }
    FUZZ_CHECK(g.px && g.w >= 1 && g.h >= 1, "decoded %dx%d", g.w, g.h);
    uint8_t out[DIGIT_SIDE * DIGIT_SIDE];
    DigitInfo info;
    if (digit_preprocess(out, g.px, g.w, g.h, &info, &e) == 0 && !info.passthrough)
        FUZZ_CHECK(info.out_w >= 1 && info.out_w <= DIGIT_BOX && info.out_h >= 1 &&
                       info.out_h <= DIGIT_BOX, "fitted to %dx%d", info.out_w, info.out_h);
    image_free(&g);
    return 0;
}
