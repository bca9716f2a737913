#include <criterion/criterion.h>
#include <string.h>

#include "err.h"

Test(err, names_and_texts_come_from_one_list)
{
    cr_assert_str_eq(bt_err_name(BT_EAGAIN), "EAGAIN");
    cr_assert_str_eq(bt_err_name(BT_EINVALMSG), "EINVALMSG");
    cr_assert(strstr(bt_strerror(BT_EAGAIN), "try again"));
    cr_assert_str_eq(bt_err_name(12345), "EUNKNOWN");
    cr_assert(BT_EAGAIN < 0 && BT_ETIMEDOUT < 0);
}
