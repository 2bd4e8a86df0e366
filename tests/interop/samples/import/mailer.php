<?php
// A PHPMailer script as found on many hosts (sample for smtpguard import).
use PHPMailer\PHPMailer\PHPMailer;

require '/usr/share/php/libphp-phpmailer/autoload.php';

$mail = new PHPMailer(true);
$mail->isSMTP();
$mail->Host = 'email-smtp.us-east-1.amazonaws.com';
$mail->SMTPAuth = true;
$mail->Username = "AKIAPHPMAILER000007";
$mail->Password = "Pm\"Pw7\\\$x\x41\101";
$mail->SMTPSecure = PHPMailer::ENCRYPTION_STARTTLS;
$mail->Port = 587;
// $mail->Password = 'an-old-commented-out-password';
