/* The archive's claim length follows the producer's delivery timeout. */
#include <criterion/criterion.h>

#include "archive.h"

Test(archive, a_claim_outlasts_the_producers_delivery_timeout)
{
    char slow[] = "message.timeout.ms=600000", fast[] = "message.timeout.ms=1000",
         other[] = "linger.ms=5";
    char *props[] = {other, slow}, *quick[] = {fast};
    struct bt_config cfg = {0};

    cr_expect_eq(bt_archive_lease_ms(&cfg), 15 * 60 * 1000);
    cfg.kafka = props;
    cfg.n_kafka = 2;
    cr_expect_eq(bt_archive_lease_ms(&cfg), 2 * 600000);
    cfg.kafka = quick;
    cfg.n_kafka = 1;
    cr_expect_eq(bt_archive_lease_ms(&cfg), 15 * 60 * 1000, "never shorter");
}
